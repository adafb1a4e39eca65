// The kernel's own view of a TCP connection: getsockopt(fd, IPPROTO_TCP, TCP_INFO) on Linux,
// called through koffi because Node exposes no way to read it.
//
// Why tcpi_rtt is the handshake RTT: when the SYN/ACK arrives, the kernel acknowledges the SYN
// it sent and takes an RTT sample from the SYN's transmit timestamp to the SYN/ACK's arrival, both
// stamped in the kernel (tcp_clean_rtx_queue -> tcp_ack_update_rtt). It is the connection's first
// sample, so the smoothed RTT equals it (srtt = m, rttvar = m/2), and until the connection sends
// data no other sample moves it. Read right after `connect`, tcpi_rtt is therefore the
// SYN -> SYN/ACK round trip in microseconds, without the event loop's delay on either side. By
// Karn's rule the kernel takes no sample from a retransmitted SYN (except through TCP timestamps,
// then at millisecond resolution and for the last exchange only), so after a retransmission the
// number no longer describes what the client waited; `total_retrans` tells the caller so.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/** The fields of `struct tcp_info` (linux/tcp.h) anylat reads. Times are microseconds. */
export interface TcpInfo {
  /** TCP_ESTABLISHED is 1 */
  state: number;
  caState: number;
  /** retransmissions of the segment now at the head of the queue */
  retransmits: number;
  rtoUs: number;
  sndMss: number;
  /** smoothed RTT; right after the handshake, the SYN -> SYN/ACK round trip */
  rttUs: number;
  rttvarUs: number;
  /** every retransmission on this connection, the SYN's included */
  totalRetrans: number;
  /** smallest RTT sample seen (kernel >= 4.6; absent when the kernel's struct is shorter) */
  minRttUs?: number;
}

export const TCP_ESTABLISHED = 1;

// Offsets in struct tcp_info: six u8 (state, ca_state, retransmits, probes, backoff, options),
// a byte of snd_wscale:4/rcv_wscale:4, a byte of delivery_rate_app_limited:1/fastopen_client_fail:2,
// then u32 rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets, last_data_sent,
// last_ack_sent, last_data_recv, last_ack_recv, pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh,
// snd_cwnd, advmss, reordering, rcv_rtt, rcv_space, total_retrans, then u64 pacing_rate,
// max_pacing_rate, bytes_acked, bytes_received, u32 segs_out, segs_in, notsent_bytes, min_rtt.
const OFF = {
  state: 0,
  caState: 1,
  retransmits: 2,
  rto: 8,
  sndMss: 16,
  rtt: 68,
  rttvar: 72,
  totalRetrans: 100,
  minRtt: 148,
} as const;
/** the struct up to total_retrans: present in every kernel anylat can meet (2.6.10+) */
const REQUIRED_BYTES = OFF.totalRetrans + 4;
const BUFFER_BYTES = 256;
const IPPROTO_TCP = 6;
const TCP_INFO = 11;

/** Decodes the bytes getsockopt wrote; `length` is the optlen it returned. */
export function decodeTcpInfo(buf: Uint8Array, length: number): TcpInfo | undefined {
  if (length < REQUIRED_BYTES || buf.length < length) return undefined;
  // struct tcp_info is in host byte order; every Linux Node supports is little-endian but one
  // (s390x), so read through a DataView with the host's endianness.
  const view = new DataView(buf.buffer, buf.byteOffset, length);
  const u32 = (offset: number) => view.getUint32(offset, LITTLE_ENDIAN);
  const info: TcpInfo = {
    state: view.getUint8(OFF.state),
    caState: view.getUint8(OFF.caState),
    retransmits: view.getUint8(OFF.retransmits),
    rtoUs: u32(OFF.rto),
    sndMss: u32(OFF.sndMss),
    rttUs: u32(OFF.rtt),
    rttvarUs: u32(OFF.rttvar),
    totalRetrans: u32(OFF.totalRetrans),
  };
  if (length >= OFF.minRtt + 4) info.minRttUs = u32(OFF.minRtt);
  return info;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type GetSockOpt = (fd: number, level: number, optname: number, optval: Uint8Array, optlen: Uint32Array) => number;

// undefined: not tried yet; null: tried and unavailable (not Linux, koffi missing, no libc).
let getsockopt: GetSockOpt | null | undefined;
let unavailableWhy: string | undefined;

/**
 * Loads koffi and libc's getsockopt once. Returns true when TCP_INFO can be read. Call it while
 * setting up, not while timing: the first load blocks the event loop for a few milliseconds.
 */
export function loadTcpInfo(): boolean {
  if (getsockopt !== undefined) return getsockopt !== null;
  getsockopt = null;
  if (process.platform !== 'linux') {
    unavailableWhy = `TCP_INFO is read on Linux only (this is ${process.platform})`;
    return false;
  }
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi') as typeof import('koffi');
    // dlopen(NULL) finds libc's symbols in the running process whichever libc it is (glibc, musl).
    const lib = koffi.load(null);
    const fn = lib.func('int getsockopt(int fd, int level, int optname, void *optval, void *optlen)');
    getsockopt = (fd, level, optname, optval, optlen) => fn(fd, level, optname, optval, optlen) as number;
  } catch (err) {
    unavailableWhy = `cannot call getsockopt through koffi: ${err instanceof Error ? err.message : String(err)}`;
  }
  return getsockopt !== null;
}

/** Why TCP_INFO is unavailable, after `loadTcpInfo` returned false. */
export function tcpInfoUnavailableReason(): string | undefined {
  return unavailableWhy;
}

// The only private part of Node we touch: a connected TCP socket's libuv handle exposes its fd.
interface HandleWithFd {
  fd?: unknown;
}

/** The file descriptor behind a connected net.Socket, when Node exposes one. */
export function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/**
 * The kernel's TCP_INFO for a connected socket, or undefined when it cannot be read (not Linux,
 * koffi unavailable, socket closed). Never throws.
 */
export function readTcpInfo(socket: Socket): TcpInfo | undefined {
  if (!loadTcpInfo() || !getsockopt) return undefined;
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  try {
    const buf = new Uint8Array(BUFFER_BYTES);
    const len = new Uint32Array([BUFFER_BYTES]);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, buf, len) !== 0) return undefined;
    return decodeTcpInfo(buf, Math.min(len[0]!, BUFFER_BYTES));
  } catch {
    return undefined;
  }
}
