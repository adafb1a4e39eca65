// The few libc calls the lab needs that Node does not expose: setns(2) to open a TUN device inside
// a network namespace, the TUNSETIFF ioctl, and ppoll(2) with a nanosecond timeout for the wire's
// scheduler. Loaded lazily so that importing the lab on a host without it costs nothing.
import koffi from 'koffi';

const O_RDWR = 0o2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const TUNSETIFF = 0x400454ca;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const PR_SET_TIMERSLACK = 29;
const IFNAMSIZ = 16;
const SCHED_FIFO = 1;

/** POLLIN for {@link Libc.ppoll}'s pollfd entries. */
export const POLLIN = 0x001;
/** errno values the wire tells apart. */
export const EAGAIN = 11;
export const EINTR = 4;

/** Thin, synchronous libc bindings; every call runs on the calling thread. */
export interface Libc {
  open(path: string, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, buf: Buffer, n: number): number;
  write(fd: number, buf: Buffer, n: number): number;
  /** ppoll(fds, nfds, timespec | null, null) */
  ppoll(fds: Buffer, nfds: number, timeout: Buffer | null, sigmask: null): number;
  errno(): number;
  strerror(errno: number): string;
  /** Finer wake-ups for this thread: the kernel may otherwise fire a timer up to 50 µs late. */
  setTimerSlackNs(ns: number): void;
  /** SCHED_FIFO at `priority` for this thread; false (errno kept) when not permitted. */
  setRealtime(priority: number): boolean;
  /** Opens a TUN device (IFF_TUN | IFF_NO_PI, non-blocking) named `ifname` inside netns `nsPath`. */
  openTunIn(nsPath: string, ifname: string): number;
}

let cached: Libc | undefined;

/** The libc bindings (loaded on first use). */
export function libc(): Libc {
  if (cached) return cached;
  const lib = koffi.load('libc.so.6');
  const open = lib.func('int open(const char *path, int flags, int mode)');
  const close = lib.func('int close(int fd)');
  const read = lib.func('long read(int fd, void *buf, unsigned long n)');
  const write = lib.func('long write(int fd, const void *buf, unsigned long n)');
  const ioctl = lib.func('int ioctl(int fd, unsigned long req, ...)');
  const setns = lib.func('int setns(int fd, int nstype)');
  const ppoll = lib.func('int ppoll(void *fds, unsigned long nfds, void *tmo, void *sigmask)');
  const prctl = lib.func(
    'int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)',
  );
  const strerror = lib.func('const char *strerror(int errnum)');
  const schedSetscheduler = lib.func('int sched_setscheduler(int pid, int policy, void *param)');

  const fail = (what: string): never => {
    const e = koffi.errno();
    throw new Error(`${what}: ${strerror(e) as string} (errno ${e})`);
  };

  const api: Libc = {
    open: (p, f, m) => open(p, f, m) as number,
    close: (fd) => close(fd) as number,
    read: (fd, buf, n) => Number(read(fd, buf, n)),
    write: (fd, buf, n) => Number(write(fd, buf, n)),
    ppoll: (fds, nfds, tmo, mask) => ppoll(fds, nfds, tmo, mask) as number,
    errno: () => koffi.errno(),
    strerror: (e) => strerror(e) as string,
    setTimerSlackNs: (ns) => {
      if ((prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0) as number) !== 0) fail('prctl(PR_SET_TIMERSLACK)');
    },
    setRealtime: (priority) => {
      const param = Buffer.alloc(4);
      param.writeInt32LE(priority);
      // pid 0 is the calling thread: only the wire's scheduler thread changes class.
      return (schedSetscheduler(0, SCHED_FIFO, param) as number) === 0;
    },
    openTunIn: (nsPath, ifname) => {
      if (Buffer.byteLength(ifname) >= IFNAMSIZ)
        throw new Error(`interface name "${ifname}" is longer than ${IFNAMSIZ - 1} bytes`);
      // A TUN device lives in the namespace of the thread that opened /dev/net/tun, so this thread
      // visits the target namespace for the open and ioctl, then comes straight back: the device
      // never exists in the root namespace and no other thread is affected.
      const home = open('/proc/thread-self/ns/net', O_CLOEXEC, 0) as number;
      if (home < 0) fail('open /proc/thread-self/ns/net');
      const target = open(nsPath, O_CLOEXEC, 0) as number;
      if (target < 0) {
        close(home);
        fail(`open ${nsPath}`);
      }
      let fd = -1;
      try {
        if ((setns(target, CLONE_NEWNET) as number) !== 0) fail(`setns ${nsPath}`);
        try {
          fd = open('/dev/net/tun', O_RDWR | O_NONBLOCK | O_CLOEXEC, 0) as number;
          if (fd < 0) fail('open /dev/net/tun');
          const ifr = Buffer.alloc(40);
          ifr.write(ifname, 0, 'ascii');
          ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI, IFNAMSIZ);
          if ((ioctl(fd, TUNSETIFF, 'void *', ifr) as number) !== 0) {
            const e = koffi.errno();
            close(fd);
            fd = -1;
            throw new Error(`TUNSETIFF ${ifname} in ${nsPath}: ${strerror(e) as string} (errno ${e})`);
          }
        } finally {
          if ((setns(home, CLONE_NEWNET) as number) !== 0) fail('setns back to the home namespace');
        }
      } finally {
        close(target);
        close(home);
      }
      return fd;
    },
  };
  cached = api;
  return api;
}
