// Where the dashboard listens, and whether that address is reachable from other hosts. The page
// has no authentication, so anything but loopback needs the caller's explicit consent.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { AnylatError } from '../util/errors.ts';

/** `host:port`, `[v6]:port`, a bare port, or the config's `{ host, port }`. */
export type ListenSpec = string | number | { host: string; port: number };

export interface ListenAddress {
  host: string;
  port: number;
}

export const DEFAULT_LISTEN: ListenAddress = { host: '127.0.0.1', port: 8080 };

function badListen(text: string, why: string): AnylatError {
  return new AnylatError(
    'ANYLAT_WEB_LISTEN',
    `web listen address "${text}": ${why}; expected host:port such as 127.0.0.1:8080 or [::1]:8080`,
  );
}

function port(text: string, whole: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65_535)
    throw badListen(whole, `port "${text}" is not a number from 0 to 65535`);
  return Number(text);
}

/** Parses a listen spec; port 0 asks the kernel for a free port (tests). */
export function parseListen(spec: ListenSpec | undefined): ListenAddress {
  if (spec === undefined) return { ...DEFAULT_LISTEN };
  if (typeof spec === 'number') return { host: DEFAULT_LISTEN.host, port: port(String(spec), String(spec)) };
  if (typeof spec === 'object') return { host: spec.host, port: port(String(spec.port), `${spec.host}:${spec.port}`) };
  const text = spec.trim();
  if (/^\d+$/.test(text)) return { host: DEFAULT_LISTEN.host, port: port(text, spec) };
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (!m) throw badListen(spec, 'cannot tell the host from the port (write an IPv6 address in brackets)');
  const host = m[1] ?? (m[2] === '' ? DEFAULT_LISTEN.host : m[2]!);
  if (m[1] !== undefined && isIP(host) !== 6) throw badListen(spec, `"${host}" in brackets is not an IPv6 address`);
  return { host, port: port(m[3]!, spec) };
}

/** 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackIp(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (isIP(v4) === 4) return v4.split('.')[0] === '127';
  return isIP(ip) === 6 && /^(0{0,4}:){2,7}0{0,3}1$|^::1$/i.test(ip);
}

/**
 * The address to bind and whether every address the host names is loopback. A host name is
 * resolved once (from /etc/hosts for `localhost`), so a name that points anywhere else counts as
 * public, and `0.0.0.0` / `::` (every interface) always do.
 */
export async function resolveListen(addr: ListenAddress): Promise<{ bind: string; loopback: boolean }> {
  if (isIP(addr.host) !== 0) return { bind: addr.host, loopback: isLoopbackIp(addr.host) };
  let found: Array<{ address: string }>;
  try {
    found = await lookup(addr.host, { all: true });
  } catch (err) {
    throw new AnylatError(
      'ANYLAT_WEB_LISTEN',
      `web listen address ${addr.host}:${addr.port}: cannot resolve "${addr.host}" (${(err as Error).message}); use an IP address such as 127.0.0.1`,
      { cause: err },
    );
  }
  if (found.length === 0) throw badListen(`${addr.host}:${addr.port}`, `"${addr.host}" resolves to no address`);
  return { bind: found[0]!.address, loopback: found.every((a) => isLoopbackIp(a.address)) };
}
