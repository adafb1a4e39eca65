// One base error with a stable `code`, one subclass per kind of failure a user can act on, and one
// table of every code with its exit code and meaning (ERROR_CODES): a code that is not in it does
// not compile, and docs/agent.md ("Exit codes and error codes") lists the same table (a test
// compares them). Target failures are not errors (they are samples with `ok: false`); these are
// for bad usage, bad config, broken environments and the agent's own failures.
import { hostPort } from './host-port.ts';

/**
 * Every error code, with the exit code of a command it ends (2: the user must change something:
 * usage, config, options, the host; 1: a failure at run time) and what it means.
 */
export const ERROR_CODES = {
  ANYLAT_USAGE: { exit: 2, meaning: 'bad command-line usage: an unknown option, a malformed or missing value' },
  ANYLAT_CONFIG: {
    exit: 2,
    meaning: 'the config file is unreadable or invalid; every problem as file:line:col: path: message',
  },
  ANYLAT_PROBE_OPTIONS: {
    exit: 2,
    meaning: 'options a probe cannot run with (tcp, tls, and options common to every protocol)',
  },
  ANYLAT_UDP_OPTIONS: { exit: 2, meaning: 'options the udp (STAMP) probe cannot run with' },
  ANYLAT_HTTP_URL: { exit: 2, meaning: 'the http probe was given something that is not an http(s) URL' },
  ANYLAT_STAMP_KEY: { exit: 2, meaning: 'the STAMP key file is unreadable or not a usable key' },
  ANYLAT_ROUND_SPEC: {
    exit: 2,
    meaning: 'a round was asked for with settings it cannot run (no endpoints, bad baseline, ...)',
  },
  ANYLAT_ROUND_ABORTED: { exit: 1, meaning: 'a round was stopped (shutdown) before it finished' },
  ANYLAT_NO_PING: { exit: 2, meaning: 'the icmp probe needs the system ping (iputils-ping)' },
  ANYLAT_BIND: {
    exit: 2,
    meaning:
      'an address cannot be listened on (reflector UDP/TCP/HTTP, web dashboard): in use, not local, or a privileged port',
  },
  ANYLAT_REFLECTOR_OPTIONS: { exit: 2, meaning: 'options the reflector cannot run with' },
  ANYLAT_INFLUX_URL: { exit: 2, meaning: 'influx.url is not a usable URL' },
  ANYLAT_STORE_OPEN: { exit: 2, meaning: 'the store file cannot be opened (permissions, a directory, not SQLite)' },
  ANYLAT_STORE_MISSING: {
    exit: 2,
    meaning: 'no store at the path given (report, web): an agent creates it on its first round',
  },
  ANYLAT_STORE_EMPTY: { exit: 2, meaning: 'the file is a database without anylat data' },
  ANYLAT_STORE_SCHEMA: { exit: 2, meaning: 'the store was written by a newer anylat' },
  ANYLAT_STORE_READONLY_WAL: {
    exit: 2,
    meaning:
      "the store's folder is not writable for this user and its -wal file holds data not yet in the store: run as the agent's user",
  },
  ANYLAT_STORE_READONLY: { exit: 1, meaning: 'a write on a store opened read-only (a bug)' },
  ANYLAT_WEB_LISTEN: { exit: 2, meaning: 'web.listen (or --listen) is malformed or does not resolve' },
  ANYLAT_WEB_PUBLIC: {
    exit: 2,
    meaning: 'the web dashboard was asked to listen where other hosts reach it without allowing it',
  },
  ANYLAT_WEB_OPTIONS: { exit: 1, meaning: 'the web server was started with contradictory options (a bug)' },
  ANYLAT_WEB_WORKER: { exit: 1, meaning: "the web dashboard's thread failed to start or exited" },
  ANYLAT_WEB_INTERNAL: { exit: 1, meaning: 'the web dashboard failed on its own (HTTP 500 for a request)' },
  ANYLAT_WEB_PARAM: { exit: 2, meaning: 'a JSON endpoint was given a bad query parameter (HTTP 400)' },
  ANYLAT_DEMO_HOST: { exit: 2, meaning: 'the demo cannot run on this host (not Linux, not root, ...)' },
  ANYLAT_DEMO_AGENT: { exit: 1, meaning: 'a demo agent did not start; the end of its log says why' },
  ANYLAT_LAB_PLATFORM: { exit: 2, meaning: 'the lab needs Linux' },
  ANYLAT_LAB_ROOT: { exit: 2, meaning: 'the lab needs root' },
  ANYLAT_LAB_TUN: { exit: 2, meaning: 'the lab needs /dev/net/tun' },
  ANYLAT_LAB_IPROUTE: { exit: 2, meaning: 'the lab needs ip from iproute2' },
  ANYLAT_LAB_EXISTS: { exit: 2, meaning: 'a lab is already up' },
  ANYLAT_LAB_DOWN: { exit: 2, meaning: 'no lab is up' },
  ANYLAT_LAB_BUSY: { exit: 1, meaning: 'another lab command holds the lab lock' },
  ANYLAT_LAB_STATE: { exit: 1, meaning: "the lab's state file is damaged" },
  ANYLAT_LAB_START: { exit: 1, meaning: 'a lab process exited or was not ready in time' },
  ANYLAT_LAB_EXEC: { exit: 1, meaning: 'a lab helper command could not be run' },
  ANYLAT_LAB_IP: { exit: 1, meaning: 'an ip command failed while building or removing the lab' },
  ANYLAT_LAB_TC: { exit: 1, meaning: "a tc command failed while setting the lab links' bandwidth" },
  ANYLAT_LAB_DOWN_INCOMPLETE: { exit: 1, meaning: 'lab down could not remove everything' },
  ANYLAT_TRACE_UNAVAILABLE: { exit: 1, meaning: 'this host cannot trace (not Linux, or koffi cannot load libc)' },
  ANYLAT_TRACE_TARGET: { exit: 2, meaning: 'trace was given a target, port or hop count it cannot use' },
  ANYLAT_TRACE_SOCKET: { exit: 1, meaning: "the tracer's socket could not be opened or set up" },
  ANYLAT_BENCH_TCPDUMP: { exit: 1, meaning: 'bench:accuracy needs tcpdump' },
  ANYLAT_BENCH_LAB_BUSY: { exit: 1, meaning: 'a benchmark waited too long for the lab' },
  ANYLAT_BENCH_LAB_LOST: { exit: 1, meaning: "a benchmark's lab was taken down during the run" },
} as const satisfies Record<string, { exit: 1 | 2; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error's message, or what was thrown written out when it is not an Error. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** Base class: `code` is stable and documented, `message` says what, where and what to do. */
export class AnylatError extends Error {
  readonly code: ErrorCode;
  /** process exit code when this error ends a command: ERROR_CODES[code].exit */
  readonly exitCode: 1 | 2;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AnylatError';
    this.code = code;
    this.exitCode = ERROR_CODES[code].exit;
  }
}

/** Bad command-line usage: exit 2. */
export class UsageError extends AnylatError {
  constructor(message: string) {
    super('ANYLAT_USAGE', message);
    this.name = 'UsageError';
  }
}

/** Bad configuration file: exit 2. Messages are `file:line: path: problem`. */
export class ConfigError extends AnylatError {
  readonly problems: string[];

  constructor(problems: string[]) {
    super('ANYLAT_CONFIG', problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Something the host lacks (a binary, root, Linux): exit 2 with what to install or run instead. */
export class EnvironmentError extends AnylatError {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'EnvironmentError';
  }
}

const BIND_REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is in use',
  EADDRNOTAVAIL: 'this host has no such address',
  EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE',
};

/**
 * An address that cannot be listened on, said one way everywhere (ANYLAT_BIND, exit 2):
 * `tcp echo: cannot listen on 127.0.0.1:862: the address is in use (EADDRINUSE); pick another --tcp-port or --bind address`
 */
export class BindError extends EnvironmentError {
  readonly address: string;
  readonly port: number;

  /** `what`: who listens (`tcp echo`); `err`: what listen() or bind() failed with; `remedy`: what to change. */
  constructor(what: string, address: string, port: number, err: unknown, remedy: string) {
    const errno = (err as { code?: unknown } | undefined)?.code;
    const why =
      typeof errno === 'string'
        ? `${BIND_REASONS[errno] ?? (err as Error).message} (${errno})`
        : err instanceof Error
          ? err.message
          : String(err);
    super('ANYLAT_BIND', `${what}: cannot listen on ${hostPort(address, port)}: ${why}; ${remedy}`, { cause: err });
    this.name = 'BindError';
    this.address = address;
    this.port = port;
  }
}
