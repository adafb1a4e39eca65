// Shared test plumbing: free loopback ports and the anylat CLI as a child process.
import { spawn, spawnSync } from 'node:child_process';

// the benchmarks start anylat too (bench:soak); they may not import test/
export { ROOT, ANYLAT_BIN, startAnylat } from '../../bench/lib/anylat-process.ts';
import { ROOT, ANYLAT_BIN } from '../../bench/lib/anylat-process.ts';

// the benchmarks start servers too; they may not import test/ (test/imports.test.ts)
export { freePort, freeUdpPort } from '../../bench/lib/ports.ts';
import { freePort } from '../../bench/lib/ports.ts';

/** A port on 127.0.0.1 where nothing listens: connecting to it is refused. */
export async function refusedPort(): Promise<number> {
  return freePort();
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `anylat ...args` to completion. */
export function runAnylat(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ANYLAT_BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The unprivileged user the non-root tests run anylat as. */
export const NOBODY = 65534;

/**
 * Throws a message saying what to do when the unprivileged user cannot read the checkout (a clone
 * inside a mode-700 directory): otherwise the test would fail with a bare "Cannot find module".
 */
export function assertNobodyCanRead(): void {
  const check = spawnSync(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(ANYLAT_BIN)}, 4)`], {
    uid: NOBODY,
    gid: NOBODY,
  });
  if (check.status !== 0) {
    throw new Error(
      `uid ${NOBODY} cannot read ${ANYLAT_BIN}: this test runs anylat as an unprivileged user. Make the checkout ` +
        'and every parent directory reachable (.ci/run does: chmod o+x on each parent, chmod -R o+rX on the checkout).',
    );
  }
}

/**
 * How early a Node timer may fire by performance.now(): libuv keeps timer time in whole
 * milliseconds, so a server that answers "after LATE ms" may answer up to this much sooner.
 */
export const TIMER_EARLY_MS = 1;
