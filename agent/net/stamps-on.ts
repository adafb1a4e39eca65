// Keeps the kernel stamping received packets for the life of the process.
//
// Linux stamps packets as they come in only while some socket wants stamps, and turns that on for
// the first such socket in deferred work (net_enable_timestamp: schedule_work when no socket
// wanted stamps before). A packet arriving within microseconds of the first socket asking carries
// no stamp; SIOCGSTAMPNS then reports the time of the ioctl (sock_gettstamp stamps "now") and a
// TCP peek's control message carries none. Seen as a datagram handled after a 250 ms stall whose
// "kernel" time was the handling time, and as a rare monotonic fallback for HTTP ttfb. One UDP
// socket with SO_TIMESTAMPNS, opened once per process at setup and never closed, moves that
// deferred work to setup; sockets opened later switch stamps on at once.
import { createRequire } from 'node:module';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOL_SOCKET = 1;
const SO_TIMESTAMPNS = 35;

let kept = false;

/** Opens the process's stamping socket once (Linux; a no-op elsewhere or without koffi). Never throws. */
export function keepStampsOn(): void {
  if (kept || process.platform !== 'linux') return;
  kept = true;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load(null);
    const socket = lib.func('int socket(int domain, int type, int protocol)');
    const setsockopt = lib.func('int setsockopt(int fd, int level, int optname, void *optval, uint32_t optlen)');
    const fd = Number(socket(AF_INET, SOCK_DGRAM, 0));
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, new Int32Array([1]), 4);
  } catch {
    // Stamping then starts with the first socket that asks, a few microseconds late.
  }
}
