// The benchmarks' lab: bench/topology.yaml brought up with the lab's own API, plus the benchmarks'
// reflector in every origin. The lab is one per machine and other people's tests tear it down
// (test/lab.test.ts starts with `lab down`), so this waits for a busy lab, never takes down a lab
// it did not bring up, and tells when its lab vanished during a run (the figures are then void).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isAlive, labDir, labDown, labNamespaces, labUp, type LabDescription } from '../../agent/lab/index.ts';
import { TSX_IMPORT } from '../../agent/lab/processes.ts';
import { readState } from '../../agent/lab/state.ts';
import { AnylatError } from '../../agent/util/errors.ts';
import { BENCH_DIR, progress } from './output.ts';

export const BENCH_TOPOLOGY = join(BENCH_DIR, 'topology.yaml');
/** Ports of the benchmarks' reflector in each origin (the lab's own keeps the topology's). */
export const BENCH_PORTS = { udp: 9862, tcp: 9862, http: 9080 } as const;
/**
 * A second reflector process in each origin for background load, so a benchmark that loads the
 * agent does not also load the event loops of the reflectors it measures against.
 */
export const LOAD_PORTS = { udp: 9863, tcp: 9863, http: 9081 } as const;

export interface BenchTarget {
  /** origin region: d1, d10, d50, d150 */
  name: string;
  address: string;
  /** round trip the topology configures (no jitter: every packet takes exactly this, plus the wire) */
  configuredRttMs: number;
}

export interface BenchLab {
  description: LabDescription;
  agentNetns: string;
  targets: BenchTarget[];
  /** throws when the lab this run brought up is gone or was replaced (its figures are void) */
  assertIntact(): void;
}

const RETRY_MS = 5_000;

function describeBusy(): string {
  const ns = labNamespaces();
  const state = readState(labDir());
  return state
    ? `a lab from ${state.topology.file} is up since ${state.createdAt}`
    : `namespaces ${ns.join(', ')} exist`;
}

/** Brings the bench lab up, waiting up to `waitMs` while another lab (someone's test) is up. */
async function acquire(waitMs: number): Promise<LabDescription> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    // A lab whose every process is gone was left by a run that was killed (a machine or session
    // that stopped mid-benchmark): nobody is using it, so it is taken down rather than waited for.
    const state = readState(labDir());
    if (state?.phase === 'up' && state.processes.length > 0 && !state.processes.some(isAlive)) {
      progress(
        `a lab from ${state.topology.file} (up since ${state.createdAt}) is left over: none of its processes runs; taking it down`,
      );
      await labDown();
      continue;
    }
    if (labNamespaces().length === 0 && !state) {
      try {
        return await labUp({ topology: BENCH_TOPOLOGY });
      } catch (err) {
        if (!(err instanceof AnylatError) || (err.code !== 'ANYLAT_LAB_EXISTS' && err.code !== 'ANYLAT_LAB_BUSY'))
          throw err;
      }
    }
    if (Date.now() > deadline) {
      throw new AnylatError(
        'ANYLAT_BENCH_LAB_BUSY',
        `the lab stayed busy for ${Math.round(waitMs / 1000)} s (${describeBusy()}); run the benchmark when no lab test runs, or "anylat lab down" if that lab is left over`,
      );
    }
    progress(`the lab is busy (${describeBusy()}); waiting`);
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
}

function startReflector(
  netns: string,
  address: string,
  site: string,
  ports: { udp: number; tcp: number; http: number },
): Promise<ChildProcess> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      netns,
      process.execPath,
      '--import',
      TSX_IMPORT,
      join(BENCH_DIR, 'reflector-main.ts'),
      address,
      site,
      String(ports.udp),
      String(ports.tcp),
      String(ports.http),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`bench reflector in ${netns} not ready after 30 s: ${err}`)),
      30_000,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bench reflector in ${netns} exited (${code}): ${err}`));
    });
    createInterface({ input: child.stdout! }).once('line', () => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve(child);
    });
  });
}

/**
 * Runs `fn` with the bench lab up and takes it down afterwards (also on Ctrl-C), unless someone
 * else's lab replaced it meanwhile.
 */
export async function withBenchLab<T>(fn: (lab: BenchLab) => Promise<T>, opts: { waitMs?: number } = {}): Promise<T> {
  progress('bringing up the bench lab (bench/topology.yaml)');
  const description = await acquire(opts.waitMs ?? 10 * 60_000);
  const createdAt = readState(labDir())?.createdAt;
  const ours = () => {
    const s = readState(labDir());
    return s !== undefined && s.createdAt === createdAt && s.topology.file === BENCH_TOPOLOGY;
  };
  const reflectors: ChildProcess[] = [];
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    for (const r of reflectors) r.kill('SIGTERM');
    if (ours()) await labDown();
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const agent = description.agents[0]!;
    const starting = description.origins.flatMap((o) => [
      startReflector(o.netns, o.address, o.site, BENCH_PORTS),
      startReflector(o.netns, o.address, o.site, LOAD_PORTS),
    ]);
    const started = await Promise.allSettled(starting);
    for (const r of started) if (r.status === 'fulfilled') reflectors.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    // An agent opening hundreds of TCP connections a second keeps each local port in TIME_WAIT
    // for a minute: give it the whole ephemeral range, as an agent host at that rate would need.
    const sysctl = spawn(
      'ip',
      [
        'netns',
        'exec',
        agent.netns,
        'sysctl',
        '-qw',
        'net.ipv4.ip_local_port_range=1024 65000',
        'net.ipv4.tcp_tw_reuse=1',
      ],
      { stdio: 'inherit' },
    );
    await new Promise((r) => sysctl.once('exit', r));
    const targets = agent.unicast.map((u) => ({ name: u.origin, address: u.address, configuredRttMs: u.rtt.minMs }));
    return await fn({
      description,
      agentNetns: agent.netns,
      targets,
      assertIntact: () => {
        if (!ours())
          throw new AnylatError(
            'ANYLAT_BENCH_LAB_LOST',
            `the bench lab was taken down or replaced during the run (${labNamespaces().length > 0 ? describeBusy() : 'no lab is up'}): someone ran the lab tests; run the benchmark again`,
          );
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}
