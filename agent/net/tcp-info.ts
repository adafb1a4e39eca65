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
//
// Why an echo's round trip can be recovered from two reads (echoRttFromTcpInfo): every ACK that
// acknowledges new, never-retransmitted data gives the kernel one sample m, from the acknowledged
// segment's transmit timestamp to the ACK's arrival, and tcp_rtt_estimator folds it in as
// srtt8 += m - srtt8/8 (srtt_us is kept times 8; tcpi_rtt = srtt_us >> 3). With S0 = tcpi_rtt read
// before the request is written and S1 after its reply arrived, one sample in between gives
// m = 8*S1 - 7*S0 + (r1 - r0), where r0, r1 in 0..7 are the low bits tcpi_rtt drops: within 7 us,
// and unbiased. When the reflector answers at once its reply carries the ACK, so m runs from the
// request leaving this host to the reply arriving, both stamped in the kernel. Whether that is what
// happened is checked, not assumed: exactly one segment came in (segs_in), it carried data
// (data_segs_in), it acknowledged exactly the request (bytes_acked) and nothing was retransmitted.
// A separate ACK first (the peer acknowledged before answering: a delayed reply, a TCP-terminating
// proxy, quick-ACK mode) would make m the time to that ACK, so it is refused. When the sample is a
// new minimum, tcpi_min_rtt holds it exactly.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { errorMessage } from '../util/errors.ts';

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
  /** acknowledged bytes (kernel >= 4.1) */
  bytesAcked?: number;
  /** segments received, pure ACKs included (kernel >= 4.2) */
  segsIn?: number;
  /** smallest RTT sample seen (kernel >= 4.6; absent when the kernel's struct is shorter) */
  minRttUs?: number;
  /** segments received that carried data (kernel >= 4.6) */
  dataSegsIn?: number;
  /** segments sent that carried data, retransmissions included (kernel >= 4.6) */
  dataSegsOut?: number;
}

export const TCP_ESTABLISHED = 1;

// Offsets in struct tcp_info: six u8 (state, ca_state, retransmits, probes, backoff, options),
// a byte of snd_wscale:4/rcv_wscale:4, a byte of delivery_rate_app_limited:1/fastopen_client_fail:2,
// then u32 rto, ato, snd_mss, rcv_mss, unacked, sacked, lost, retrans, fackets, last_data_sent,
// last_ack_sent, last_data_recv, last_ack_recv, pmtu, rcv_ssthresh, rtt, rttvar, snd_ssthresh,
// snd_cwnd, advmss, reordering, rcv_rtt, rcv_space, total_retrans, then u64 pacing_rate,
// max_pacing_rate, bytes_acked, bytes_received, u32 segs_out, segs_in, notsent_bytes, min_rtt,
// data_segs_in, data_segs_out.
const OFF = {
  state: 0,
  caState: 1,
  retransmits: 2,
  rto: 8,
  sndMss: 16,
  rtt: 68,
  rttvar: 72,
  totalRetrans: 100,
  bytesAcked: 120,
  segsIn: 140,
  minRtt: 148,
  dataSegsIn: 152,
  dataSegsOut: 156,
} as const;
/** the struct up to total_retrans: present in every kernel anylat can meet (2.6.10+) */
const REQUIRED_BYTES = OFF.totalRetrans + 4;
const BUFFER_BYTES = 256;
const IPPROTO_TCP = 6;
const TCP_INFO = 11;
const TCP_QUICKACK = 12;

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
  if (length >= OFF.bytesAcked + 8) info.bytesAcked = Number(view.getBigUint64(OFF.bytesAcked, LITTLE_ENDIAN));
  if (length >= OFF.segsIn + 4) info.segsIn = u32(OFF.segsIn);
  if (length >= OFF.minRtt + 4) info.minRttUs = u32(OFF.minRtt);
  if (length >= OFF.dataSegsIn + 4) info.dataSegsIn = u32(OFF.dataSegsIn);
  if (length >= OFF.dataSegsOut + 4) info.dataSegsOut = u32(OFF.dataSegsOut);
  return info;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type GetSockOpt = (fd: number, level: number, optname: number, optval: Uint8Array, optlen: Uint32Array) => number;
type SetSockOpt = (fd: number, level: number, optname: number, optval: Int32Array, optlen: number) => number;

// undefined: not tried yet; null: tried and unavailable (not Linux, koffi missing, no libc).
let getsockopt: GetSockOpt | null | undefined;
let setsockopt: SetSockOpt | null = null;
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
    const set = lib.func('int setsockopt(int fd, int level, int optname, void *optval, uint32_t optlen)');
    getsockopt = (fd, level, optname, optval, optlen) => fn(fd, level, optname, optval, optlen) as number;
    setsockopt = (fd, level, optname, optval, optlen) => set(fd, level, optname, optval, optlen) as number;
  } catch (err) {
    unavailableWhy = `cannot call getsockopt through koffi: ${errorMessage(err)}`;
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

const INFO_BUF = new Uint8Array(BUFFER_BYTES);
const INFO_LEN = new Uint32Array(1);

/**
 * The kernel's TCP_INFO for a connected socket, or undefined when it cannot be read (not Linux,
 * koffi unavailable, socket closed). Never throws.
 */
export function readTcpInfo(socket: Socket): TcpInfo | undefined {
  if (!loadTcpInfo() || !getsockopt) return undefined;
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  try {
    // One buffer for every read: the call is synchronous and decoding copies the fields out, and an
    // echo reads twice per sample at every path's rate.
    INFO_BUF.fill(0);
    INFO_LEN[0] = BUFFER_BYTES;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, INFO_BUF, INFO_LEN) !== 0) return undefined;
    return decodeTcpInfo(INFO_BUF, Math.min(INFO_LEN[0]!, BUFFER_BYTES));
  } catch {
    return undefined;
  }
}

const QUICKACK_OFF = new Int32Array([0]);

/**
 * Asks the kernel to delay this socket's ACKs (TCP_QUICKACK = 0: "ping-pong" mode), so an
 * answer written at once carries the ACK of the request it answers instead of following a bare
 * ACK. A reflector does this so that a sender timing its echo from TCP_INFO gets one clean RTT
 * sample per exchange (see echoRttFromTcpInfo). The kernel may leave the mode again (a reply
 * later than its delayed-ACK timer), so call it again after answering. Returns false where it
 * cannot be set (not Linux, koffi unavailable, socket closed). Never throws.
 */
export function delayAcks(socket: Socket): boolean {
  if (!loadTcpInfo() || !setsockopt) return false;
  const fd = socketFd(socket);
  if (fd === undefined) return false;
  try {
    return setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, QUICKACK_OFF, 4) === 0;
  } catch {
    return false;
  }
}

/** Why an echo was not timed by the kernel (the monotonic clock timed it instead). */
export type EchoFallback =
  /** TCP_INFO unreadable, or the kernel's struct predates the counters the check needs (< 4.6) */
  | 'unavailable'
  /** something was retransmitted: by Karn's rule there is no clean sample */
  | 'retransmitted'
  /** an ACK came apart from the reply (delayed reply, quick-ACK, a TCP-terminating proxy) */
  | 'separate_ack'
  /** the reply came in more than one segment */
  | 'split_reply'
  /** the segment did not acknowledge exactly the request */
  | 'not_acked'
  /** the recovered sample is outside what the monotonic span allows */
  | 'inconsistent';

export const ECHO_FALLBACKS: readonly EchoFallback[] = [
  'unavailable',
  'retransmitted',
  'separate_ack',
  'split_reply',
  'not_acked',
  'inconsistent',
];

/** the most the recovered sample may differ from the truth: the low bits tcpi_rtt drops */
export const ECHO_RTT_ROUNDING_US = 7;

/**
 * The kernel's RTT sample for one exchange, from TCP_INFO read right before a message of
 * `requestBytes` was written (`before`) and right after the answer that acknowledged it arrived
 * (`after`); `spanUs` is the monotonic clock's span over the same exchange (write to the answer's
 * callback), which contains the kernel's. The probe uses it for its echo request and reply, the
 * reflector for its previous reply and the next request. Returns the sample in microseconds
 * (`exact` when tcpi_min_rtt holds it, otherwise within ECHO_RTT_ROUNDING_US), or why there is no
 * single clean sample.
 */
export function echoRttFromTcpInfo(
  before: TcpInfo | undefined,
  after: TcpInfo | undefined,
  requestBytes: number,
  spanUs: number,
): { ok: true; us: number; exact: boolean } | { ok: false; why: EchoFallback } {
  const d = deltas(before, after);
  if (!d.ok) return d;
  if (d.segs > d.dataSegs) return { ok: false, why: 'separate_ack' };
  if (d.dataSegs > 1) return { ok: false, why: 'split_reply' };
  if (d.dataSegs !== 1) return { ok: false, why: 'inconsistent' };
  if (d.acked !== requestBytes) return { ok: false, why: 'not_acked' };
  return oneSample(before!, after!, spanUs);
}

// What both exchanges check first: the counters are there and nothing was retransmitted; then how
// far they moved (u32 counters: wrap-around safe differences). dataSegsOut is read only when the
// kernel has it (>= 4.6, as dataSegsIn).
function deltas(
  before: TcpInfo | undefined,
  after: TcpInfo | undefined,
):
  | { ok: true; segs: number; dataSegs: number; dataSegsOut: number | undefined; acked: number }
  | { ok: false; why: 'unavailable' | 'retransmitted' } {
  if (!before || !after) return { ok: false, why: 'unavailable' };
  if (
    before.segsIn === undefined ||
    after.segsIn === undefined ||
    before.dataSegsIn === undefined ||
    after.dataSegsIn === undefined
  )
    return { ok: false, why: 'unavailable' };
  if (before.bytesAcked === undefined || after.bytesAcked === undefined || before.rttUs === 0)
    return { ok: false, why: 'unavailable' };
  if (after.totalRetrans !== before.totalRetrans || after.retransmits !== 0) return { ok: false, why: 'retransmitted' };
  return {
    ok: true,
    segs: (after.segsIn - before.segsIn) >>> 0,
    dataSegs: (after.dataSegsIn - before.dataSegsIn) >>> 0,
    dataSegsOut:
      before.dataSegsOut === undefined || after.dataSegsOut === undefined
        ? undefined
        : (after.dataSegsOut - before.dataSegsOut) >>> 0,
    acked: after.bytesAcked - before.bytesAcked,
  };
}

// The one RTT sample the kernel folded into tcpi_rtt between `before` and `after`, once the caller
// has checked that exactly one was taken: from tcpi_min_rtt when it is a new minimum, otherwise
// m = 8*S1 - 7*S0, refused when outside what tcpi_min_rtt and the monotonic span allow.
function oneSample(
  before: TcpInfo,
  after: TcpInfo,
  spanUs: number,
): { ok: true; us: number; exact: boolean } | { ok: false; why: 'inconsistent' } {
  const slack = ECHO_RTT_ROUNDING_US;
  // A sample below the running minimum replaces it (minmax_running_min): then it is known exactly.
  if (before.minRttUs !== undefined && after.minRttUs !== undefined && after.minRttUs < before.minRttUs) {
    const m = after.minRttUs;
    return m > 0 && m <= spanUs + 1
      ? { ok: true, us: Math.min(m, spanUs), exact: true }
      : { ok: false, why: 'inconsistent' };
  }
  const m = 8 * after.rttUs - 7 * before.rttUs;
  const floor = after.minRttUs ?? 0;
  if (m + slack < floor || m - slack > spanUs || m + slack <= 0) return { ok: false, why: 'inconsistent' };
  return { ok: true, us: Math.max(floor, 1, Math.min(m, spanUs)), exact: false };
}

/** Why a response's first byte was not timed by the kernel (the monotonic clock timed it instead). */
export type ResponseFallback =
  | Exclude<EchoFallback, 'split_reply'>
  /** the request left in more than one data segment: more than one ACK could have sampled it */
  | 'split_request';

export const RESPONSE_FALLBACKS: readonly ResponseFallback[] = [
  'unavailable',
  'retransmitted',
  'separate_ack',
  'split_request',
  'not_acked',
  'inconsistent',
];

/**
 * The kernel's RTT sample for a request and the start of its response, where the response may
 * span several segments (HTTP: headers, then body) and `after` is read once the part the caller
 * waits for (the headers) arrived, by when more of it may be in. TCP_INFO is read right before the
 * request of `requestBytes` is written (`before`) and then (`after`); `spanUs` is the monotonic
 * span over the same stretch. Returns the sample from the request leaving to the first segment
 * that acknowledged it arriving, in microseconds (`exact` as for echoRttFromTcpInfo), or why
 * there is no single clean sample.
 *
 * Unlike an echo's reply, the response may already be in several segments; what makes the sample
 * clean is still checked from the counters alone. The request left in one data segment
 * (data_segs_out moved by 1) and bytes_acked moved by exactly its bytes, so exactly one incoming
 * segment acknowledged new data, and only that one gave the kernel an RTT sample (a segment that
 * acknowledges nothing new gives none). Every incoming segment carried data (segs_in moved as much
 * as data_segs_in), so the acknowledging one was a data segment and, as every segment acknowledges
 * all its sender has received, it is the first the server sent after the request reached it: the
 * response's first. Segments behind it (more headers, the body) change nothing. A data segment
 * ahead of it would have left the server before the request arrived (a server speaking unasked,
 * which an HTTP server does not) and samples nothing either. A bare ACK anywhere in between is
 * refused: the sample may have ended at it (the server's delayed-ACK timer fired before it
 * answered, or it acknowledges at once in quick-ACK mode, as Linux does a connection's first data).
 */
export function responseRttFromTcpInfo(
  before: TcpInfo | undefined,
  after: TcpInfo | undefined,
  requestBytes: number,
  spanUs: number,
): { ok: true; us: number; exact: boolean } | { ok: false; why: ResponseFallback } {
  const d = deltas(before, after);
  if (!d.ok) return d;
  if (d.dataSegsOut === undefined) return { ok: false, why: 'unavailable' };
  if (d.segs > d.dataSegs) return { ok: false, why: 'separate_ack' };
  if (d.dataSegsOut > 1) return { ok: false, why: 'split_request' };
  if (d.dataSegsOut !== 1 || d.dataSegs === 0) return { ok: false, why: 'inconsistent' };
  if (d.acked !== requestBytes) return { ok: false, why: 'not_acked' };
  return oneSample(before!, after!, spanUs);
}
