// The reflector: the STAMP Session-Reflector (UDP), the TCP echo, the HTTP endpoint and, when asked,
// the DNS site answers, started together on the same bind addresses with the same site name, and
// closed together.
import { keepStampsOn } from '../net/stamps-on.ts';
import { startDnsReflector } from './dns.ts';
import { startHttpReflector } from './http.ts';
import { localAddresses, startStampReflector } from './stamp.ts';
import { startTcpEcho } from './tcp-echo.ts';
import type { ReflectorPart } from './types.ts';

export interface ReflectorOptions {
  /** the site name every part reports */
  site: string;
  /** local addresses, one socket each; default every address of this host (not IPv6 link-local) */
  binds?: string[];
  /** STAMP on UDP; `false` leaves it out */
  udp: { port: number; authKey?: Buffer; ratePerSourcePps?: number } | false;
  /** the TCP echo; `false` leaves it out */
  tcp: { port: number; maxConnectionsPerSource?: number } | false;
  /** the HTTP(S) endpoint; `false` leaves it out */
  http: { port: number; tls?: { cert: string | Buffer; key: string | Buffer }; bytesPerSecond?: number } | false;
  /** the DNS answers (CHAOS TXT hostname.bind / id.server, NSID) on UDP and TCP; absent or `false` leaves it out */
  dns?: { port: number; ratePerSourceQps?: number } | false;
  log?: (line: string) => void;
}

export interface RunningReflector {
  readonly parts: readonly ReflectorPart[];
  /** every listening socket: part, address, port (resolved when 0 was asked) */
  readonly listening: ReadonlyArray<{ kind: ReflectorPart['kind']; scheme: string; address: string; port: number }>;
  /** each part's counters, keyed by part */
  stats(): Record<string, Record<string, number>>;
  close(): Promise<void>;
}

/**
 * Starts every enabled part. When one cannot listen (port taken, address missing), the parts
 * already started are closed and its error is thrown.
 */
export async function startReflector(options: ReflectorOptions): Promise<RunningReflector> {
  keepStampsOn(); // the kernel stamps the first request too (stamps-on.ts)
  const binds = options.binds && options.binds.length > 0 ? options.binds : localAddresses();
  const common = { site: options.site, binds, ...(options.log ? { log: options.log } : {}) };
  const parts: ReflectorPart[] = [];
  const schemes = new Map<ReflectorPart, string>();
  try {
    if (options.udp) {
      const part = await startStampReflector({
        ...common,
        port: options.udp.port,
        ...(options.udp.authKey ? { authKey: options.udp.authKey } : {}),
        ...(options.udp.ratePerSourcePps !== undefined ? { ratePerSourcePps: options.udp.ratePerSourcePps } : {}),
      });
      parts.push(part);
      schemes.set(part, options.udp.authKey ? 'stamp (authenticated)' : 'stamp');
    }
    if (options.tcp) {
      const part = await startTcpEcho({
        ...common,
        port: options.tcp.port,
        ...(options.tcp.maxConnectionsPerSource !== undefined
          ? { maxConnectionsPerSource: options.tcp.maxConnectionsPerSource }
          : {}),
      });
      parts.push(part);
      schemes.set(part, 'echo');
    }
    if (options.http) {
      const part = await startHttpReflector({
        ...common,
        port: options.http.port,
        ...(options.http.tls ? { tls: options.http.tls } : {}),
        ...(options.http.bytesPerSecond !== undefined
          ? { bytes: { bytesPerSecond: options.http.bytesPerSecond } }
          : {}),
      });
      parts.push(part);
      schemes.set(part, options.http.tls ? 'https' : 'http');
    }
    if (options.dns) {
      const part = await startDnsReflector({
        ...common,
        port: options.dns.port,
        ...(options.dns.ratePerSourceQps !== undefined ? { ratePerSourceQps: options.dns.ratePerSourceQps } : {}),
      });
      parts.push(part);
      schemes.set(part, 'dns (udp+tcp)');
    }
  } catch (err) {
    await Promise.allSettled(parts.map((p) => p.close()));
    throw err;
  }
  const listening = parts.flatMap((p) =>
    p.listening.map((l) => ({ kind: p.kind, scheme: schemes.get(p)!, address: l.address, port: l.port })),
  );
  let closing: Promise<void> | undefined;
  return {
    parts,
    listening,
    stats: () => Object.fromEntries(parts.map((p) => [p.kind, p.stats()])),
    close: () => {
      closing ??= Promise.allSettled(parts.map((p) => p.close())).then(() => undefined);
      return closing;
    },
  };
}
