// What each part of the reflector (STAMP over UDP, TCP echo, HTTP) exposes to the reflector's
// wiring in reflector/index.ts.

export interface ReflectorCommonOptions {
  /** the site name this reflector reports (e.g. `us-east-1`, `edge-fra`) */
  site: string;
  /** local addresses to bind, one socket each, so replies leave from the address asked */
  binds: string[];
  /** log line sink; defaults to stderr */
  log?: (line: string) => void;
}

/** A running reflector part. */
export interface ReflectorPart {
  readonly kind: 'udp' | 'tcp' | 'http' | 'dns';
  /** where it listens, one entry per bound address (port resolved when 0 was asked) */
  readonly listening: ReadonlyArray<{ address: string; port: number }>;
  /** counters for humans and tests: packets reflected, malformed, rate-limited, ... */
  stats(): Record<string, number>;
  close(): Promise<void>;
}
