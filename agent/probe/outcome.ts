// How a target's failure becomes a sample's outcome: one table from error codes (the kernel's,
// undici's, OpenSSL's through Node) to the low-cardinality reasons of core/model.ts, one way to
// describe an error in a sample's `detail`, and one error a probe throws for a failure it found
// itself (an HTTP status, a body too large). Every probe classifies through here.
import type { Attempt, FailureReason } from '../core/model.ts';

const REASONS: Readonly<Record<string, FailureReason>> = {
  ECONNREFUSED: 'refused',
  ETIMEDOUT: 'timeout',
  ECONNRESET: 'reset',
  ECONNABORTED: 'reset',
  EPIPE: 'reset',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  EADDRNOTAVAIL: 'unreachable',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_OVERFLOW: 'protocol',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'protocol',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'protocol',
};

/** Certificate and TLS codes Node passes up from OpenSSL (`ERR_SSL_…`, `DEPTH_ZERO_SELF_SIGNED_CERT`, …). */
const TLS_CODE = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/;

/** A target failure a probe found itself, already classified (thrown through undici and back). */
export class ProbeFailure extends Error {
  readonly reason: FailureReason;
  constructor(reason: FailureReason, detail: string) {
    super(detail);
    this.reason = reason;
  }
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The failure reason for an error a target can cause (`ECONNREFUSED` -> `refused`, an `HPE_` parse
 * error -> `protocol`, a certificate code -> `tls`, ...), or undefined when it is none of them.
 */
export function socketFailureReason(err: unknown): FailureReason | undefined {
  if (err instanceof ProbeFailure) return err.reason;
  if (err instanceof Error && err.name === 'HTTPParserError') return 'protocol';
  const code = codeOf(err);
  if (code === undefined) return undefined;
  if (code in REASONS) return REASONS[code];
  if (code.startsWith('HPE_')) return 'protocol';
  if (TLS_CODE.test(code)) return 'tls';
  return undefined;
}

/** `socketFailureReason`, or `fallback` for an error it does not know (the phase says what it was). */
export function failureReason(err: unknown, fallback: FailureReason): FailureReason {
  return socketFailureReason(err) ?? fallback;
}

/** A human-readable line for an error: its code (when the message does not name it) and message. */
export function errorDetail(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = codeOf(err);
  return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

/** A failed attempt that measured nothing. */
export function failedAttempt(
  t0: number,
  t1: number,
  reason: FailureReason,
  detail?: string,
): Extract<Attempt, { ok: false }> {
  return detail === undefined
    ? { ok: false, t0, t1, values: {}, reason }
    : { ok: false, t0, t1, values: {}, reason, detail };
}
