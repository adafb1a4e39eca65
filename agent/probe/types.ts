import type { Attempt, Metric, PacketCounters, Protocol } from '../core/model.ts';
import type { QueryType } from '../core/dns-codec.ts';

/** Where one probe sends its samples. The round resolves names once, before the first sample. */
export interface ProbeTarget {
  /** endpoint name (`anycast`, `us-east-1`), for messages only */
  endpoint: string;
  /** IP literal the probe connects to: DNS is kept out of every metric but http `dns` */
  address: string;
  /** the host name as configured, when it was a name (http `dns` times its lookup) */
  hostname?: string;
}

/** Options shared by every probe; each protocol's own options sit beside them. */
export interface ProbeOptionsBase {
  /** per-sample timeout; the probe abandons the sample and reports `timeout` */
  timeoutMs: number;
}

export interface UdpProbeOptions extends ProbeOptionsBase {
  port: number;
  /** HMAC-SHA-256 key for STAMP authenticated mode; unauthenticated when absent */
  authKey?: Buffer;
  /** bytes reserved in each test packet for the reflector's site TLV (0 disables it) */
  siteTlvBytes?: number;
}

export interface TcpProbeOptions extends ProbeOptionsBase {
  port: number;
  /** time one small echo on the open connection (the far end must be an anylat reflector) */
  echo: boolean;
  /**
   * how `connect` is timed: `kernel` (default) reports the kernel's handshake RTT (TCP_INFO
   * `tcpi_rtt`, Linux) and falls back to `monotonic` where it cannot; `monotonic` times
   * connect() to its callback with performance.now()
   */
  connectClock?: 'kernel' | 'monotonic';
  /**
   * how the echo `rtt` is timed: `kernel` (default) reports the kernel's RTT sample for the echo
   * (TCP_INFO before and after, Linux), or the monotonic clock for an echo the kernel took no
   * single clean sample of, minus the reflector's own turnaround when it reports one;
   * `monotonic` times write() to the reply's callback and subtracts nothing (the behaviour
   * before kernel timing, kept for comparison)
   */
  echoClock?: 'kernel' | 'monotonic';
}

export interface TlsProbeOptions extends ProbeOptionsBase {
  port: number;
  /** SNI and the name the certificate must match */
  serverName?: string;
  /** accept any certificate (self-signed labs); the handshake is timed the same way */
  insecure?: boolean;
  /** PEM CA bundle to trust instead of the system's */
  ca?: string | Buffer;
}

export interface HttpProbeOptions extends ProbeOptionsBase {
  /** the service's URL: its host is sent as Host and SNI, the connection goes to the endpoint */
  url: string;
  insecure?: boolean;
  ca?: string | Buffer;
  /** response header naming the site that answered (default `x-anylat-site`) */
  siteHeader?: string;
  /** also time a second request on the same connection (`warm`); default true */
  warm?: boolean;
  /**
   * how `ttfb` is timed, and with it `connect`, `warm` and `total`: `kernel` (default) reports, on
   * Linux, the handshake's RTT for connect and, over plain http, the kernel's RTT sample for each
   * request when it has a clean one (probe/http.ts), else the monotonic span; `monotonic` always
   * times them by the monotonic clock (the behaviour before kernel timing, kept for comparison)
   */
  ttfbClock?: 'kernel' | 'monotonic';
}

export interface IcmpProbeOptions extends ProbeOptionsBase {}

export interface DnsProbeOptions extends ProbeOptionsBase {
  port: number;
  /** `udp` (default): one connected socket; `tcp`: one connection kept open, queries timed on it */
  transport?: 'udp' | 'tcp';
  /** the name asked (default `hostname.bind`: CHAOS TXT, answered with the site) */
  qname?: string;
  /** record type for a name other than the CHAOS site names (default A) */
  qtype?: QueryType;
  /** ask for the server's NSID (EDNS option 3) and pad the query (default true) */
  nsid?: boolean;
}

export interface TransferProbeOptions extends ProbeOptionsBase {
  /** the object sizes in bytes; the round makes one prober per (endpoint, size) */
  sizes: readonly number[];
  /** the one size this prober downloads (set by the round from `sizes`) */
  size?: number;
  /** a URL to download instead of the reflector's `/bytes/N`; `{size}` is replaced by the size in bytes */
  url?: string;
  /** the reflector's HTTP port when `url` is not set (default 8080) */
  port?: number;
  /** transfer samples per (endpoint, size) per round (default 3) */
  samples?: number;
  /** a download's timeout, instead of the round's per-sample timeout */
  sampleTimeoutMs?: number;
  insecure?: boolean;
  ca?: string | Buffer;
  /** response header naming the site (default `x-anylat-site`) */
  siteHeader?: string;
}

/** Options for each protocol, keyed like the registry. */
export interface ProbeOptionsMap {
  udp: UdpProbeOptions;
  tcp: TcpProbeOptions;
  tls: TlsProbeOptions;
  http: HttpProbeOptions;
  icmp: IcmpProbeOptions;
  dns: DnsProbeOptions;
  transfer: TransferProbeOptions;
}

/**
 * A probe set up for one target: it translates its settings once and is then sampled many
 * times. `sample` never rejects for a target's failure (that is an `ok: false` attempt); it
 * resolves within roughly `timeoutMs`, or at once as a `timeout` when `signal` (the round's)
 * aborts first: anylat's probes run it in probe/sample.ts `runSample`, which owns that contract.
 * `close` ends the samples in flight (`error`), releases sockets and returns packet counters where
 * the protocol has them.
 */
export interface Prober {
  /** metrics this prober reports, in order; a sample may fill only some of them */
  readonly metrics: readonly Metric[];
  sample(seq: number, signal?: AbortSignal): Promise<Attempt>;
  close(): Promise<PacketCounters | undefined>;
}

/** One protocol's entry point: set up a prober for a target. Throws only for bad options or a broken host. */
export type ProbeFactory<P extends Protocol> = (
  target: ProbeTarget,
  options: ProbeOptionsMap[P],
) => Prober | Promise<Prober>;
