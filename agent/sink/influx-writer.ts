// One InfluxDB write: POST /api/v2/write?precision=ms with the given lines, and what the answer
// means for them. We use @influxdata/influxdb-client's transport (auth header, gzip, HttpError
// with status, body and headers) but not its WriteApi: WriteApi keeps lines in memory buffers,
// retries on its own, drops lines when its retry buffer overflows or maxRetryTime passes, and its
// batch auto-flush swallows errors, so a resolved flush() does not prove every line was written.
// Here one call is one request, and only a 2xx lets the caller delete the lines.
import { HttpError, InfluxDB, RequestTimedOutError, setLogger, type Transport } from '@influxdata/influxdb-client';
import { Secret } from '../core/secret.ts';
import { linkSignal } from '../util/abort.ts';
import { AnylatError } from '../util/errors.ts';
import { parseRetryAfter } from './backoff.ts';
import { displayUrl, redact } from './redact.ts';

/** Where the sink writes. `token` may be a plain string; it is wrapped so it never prints. */
export interface InfluxTarget {
  url: string;
  token?: string | Secret;
  org: string;
  bucket: string;
  /** one write request, connect to response; default 10 s */
  timeoutMs?: number;
  /** bodies larger than this are gzipped; default 4096 bytes */
  gzipThresholdBytes?: number;
}

/** What one write attempt means for its lines. */
export type WriteOutcome =
  | { kind: 'ok'; status: number }
  /** keep the lines, try again later (unreachable, timeout, 5xx, 429, auth/bucket problems) */
  | { kind: 'retry'; status?: number; message: string; retryAfterMs?: number; timedOut?: boolean }
  /** the server refused these lines as malformed: retrying them can never succeed */
  | { kind: 'reject'; status: number; message: string }
  /** the caller aborted (shutdown) before an answer: the lines' fate is unknown, keep them */
  | { kind: 'aborted' };

// The library logs through a global logger (e.g. a warning that names the URL). Route it through
// redaction once, for every writer.
let loggerInstalled = false;
let libraryLog: (line: string) => void = (line) => process.stderr.write(`${line}\n`);
function installLogger(log: (line: string) => void): void {
  libraryLog = log;
  if (loggerInstalled) return;
  loggerInstalled = true;
  const emit = (level: string, message: string, err?: unknown) => {
    const detail = err instanceof Error ? `: ${err.message}` : '';
    libraryLog(redact(`sink: influxdb-client ${level}: ${message}${detail}`));
  };
  setLogger({ error: (m, e) => emit('error', m, e), warn: (m, e) => emit('warn', m, e) });
}

/** Longest server message kept, cut after the token is scrubbed (a cut first could split the token). */
const MAX_SERVER_MESSAGE = 4000;

function serverMessage(err: HttpError): string {
  const json = err.json as { message?: unknown; error?: unknown } | undefined;
  const fromJson =
    typeof json?.message === 'string' ? json.message : typeof json?.error === 'string' ? json.error : undefined;
  const text = (fromJson ?? err.body ?? '').trim();
  return text.length > 0 ? text : (err.statusMessage ?? 'no message');
}

export class InfluxWriter {
  readonly target: string;
  private readonly transport: Transport;
  private readonly path: string;
  private readonly secret: Secret | undefined;
  private readonly timeoutMs: number;
  private readonly gzipThreshold: number;

  constructor(target: InfluxTarget, log?: (line: string) => void) {
    this.secret =
      target.token === undefined
        ? undefined
        : typeof target.token === 'string'
          ? new Secret(target.token)
          : target.token;
    this.timeoutMs = target.timeoutMs ?? 10_000;
    this.gzipThreshold = target.gzipThresholdBytes ?? 4096;
    this.target = `${displayUrl(target.url)} (${target.org ? `org ${target.org}, ` : ''}bucket ${target.bucket})`;
    installLogger(log ?? libraryLog);
    try {
      const token = this.secret?.reveal();
      // timeout here is the socket idle timeout; the whole request is bounded by our AbortSignal.
      const client = new InfluxDB({
        url: target.url,
        timeout: this.timeoutMs,
        ...(token === undefined ? {} : { token }),
      });
      this.transport = client.transport;
    } catch (err) {
      throw new AnylatError(
        'ANYLAT_INFLUX_URL',
        `influx.url ${displayUrl(target.url)}: ${this.clean(err)}; expected http(s)://host:port`,
      );
    }
    this.path = `/api/v2/write?org=${encodeURIComponent(target.org)}&bucket=${encodeURIComponent(target.bucket)}&precision=ms`;
  }

  /** Text with the token and any credentials removed. */
  clean(err: unknown): string {
    const text = err instanceof Error ? err.message || err.name : String(err);
    return redact(text, this.secret?.reveal());
  }

  /** Sends `lines` in one request. Never rejects. */
  async write(lines: readonly string[], signal?: AbortSignal): Promise<WriteOutcome> {
    // Never AbortSignal.any([signal, timeout]) here: `signal` lives as long as the sink, and on
    // Node 20 it would keep every request (callbacks and body) alive. See agent/util/abort.ts.
    const link = linkSignal(signal, this.timeoutMs);
    let status: number | undefined;
    try {
      await this.transport.request(
        this.path,
        lines.join('\n'),
        {
          method: 'POST',
          headers: { 'content-type': 'text/plain; charset=utf-8' },
          gzipThreshold: this.gzipThreshold,
          signal: link.signal,
        },
        (_headers, code) => {
          status = code;
        },
      );
      return { kind: 'ok', status: status ?? 204 };
    } catch (err) {
      if (signal?.aborted === true) return { kind: 'aborted' };
      if (link.reason === 'timeout' || err instanceof RequestTimedOutError) {
        return {
          kind: 'retry',
          timedOut: true,
          message: `no answer from InfluxDB at ${this.target} within ${this.timeoutMs} ms`,
        };
      }
      return this.classify(err);
    } finally {
      link.dispose();
    }
  }

  private classify(err: unknown): WriteOutcome {
    if (!(err instanceof HttpError)) {
      const code = (err as { code?: unknown }).code;
      const text = this.clean(err);
      const prefix = typeof code === 'string' && !text.includes(code) ? `${code} ` : '';
      return { kind: 'retry', message: `cannot reach InfluxDB at ${this.target}: ${prefix}${text}` };
    }
    const status = err.statusCode;
    const said = redact(serverMessage(err), this.secret?.reveal()).slice(0, MAX_SERVER_MESSAGE);
    const retryAfterMs = parseRetryAfter(err.headers?.['retry-after']);
    const retry = (message: string): WriteOutcome => ({
      kind: 'retry',
      status,
      message,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
    if (status === 401 || status === 403) {
      return retry(
        `InfluxDB at ${this.target} refused the token (${status}): ${said}; fix influx.token, the lines stay in the outbox`,
      );
    }
    if (status === 404) {
      return retry(
        `InfluxDB at ${this.target} has no such org or bucket (404): ${said}; fix influx.org/influx.bucket, the lines stay in the outbox`,
      );
    }
    if (status === 408 || status === 425 || status === 429 || status >= 500 || status < 400) {
      return retry(`InfluxDB at ${this.target} answered ${status}: ${said}`);
    }
    return { kind: 'reject', status, message: `${status}: ${said}` };
  }
}
