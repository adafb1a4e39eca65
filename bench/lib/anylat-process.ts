// The anylat CLI as a child process, for the benchmarks and (re-exported by test/support/net.ts) the tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const ANYLAT_BIN = fileURLToPath(new URL('../../bin/anylat.js', import.meta.url));

/** Starts `anylat ...args` in the background; resolves once `ready` matches its output. */
export async function startAnylat(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; ready?: RegExp; timeoutMs?: number; cwd?: string } = {},
): Promise<{ child: ChildProcess; output: () => string; stop: (signal?: NodeJS.Signals) => Promise<number | null> }> {
  const child = spawn(process.execPath, [ANYLAT_BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (d: Buffer) => (out += d.toString());
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  if (options.ready) {
    const ready = options.ready;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`anylat ${args.join(' ')} not ready in time:\n${out}`)),
        options.timeoutMs ?? 20_000,
      );
      const check = () => {
        if (ready.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      child.stderr!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`anylat ${args.join(' ')} exited with ${code} before ready:\n${out}`));
      });
      check();
    });
  }
  return {
    child,
    output: () => out,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
