// The lab's state on disk, so `status`, `fail`, `heal` and `down` work from any process: the
// resolved topology, what is failed, and which processes the lab started. Written atomically
// (temp file + rename); mutations hold a lock file.
import {
  mkdirSync,
  openSync,
  closeSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { AnylatError } from '../util/errors.ts';
import type { LabProcess } from './processes.ts';
import type { Failures } from './routing.ts';
import type { LabTopology } from './topology.ts';

/** Where the lab keeps its state: `$ANYLAT_LAB_DIR`, else /run/anylat-lab. */
export function labDir(dir?: string): string {
  return dir ?? process.env.ANYLAT_LAB_DIR ?? '/run/anylat-lab';
}

/** The state file's content. */
export interface LabState {
  version: 1;
  /** `starting` until every part answered, then `up` */
  phase: 'starting' | 'up';
  createdAt: string;
  topology: LabTopology;
  failures: Failures;
  processes: LabProcess[];
}

export function statePath(dir: string): string {
  return join(dir, 'state.json');
}

/** Reads the state file; undefined when there is none (no lab, or it was torn down). */
export function readState(dir: string): LabState | undefined {
  let text: string;
  try {
    text = readFileSync(statePath(dir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as LabState;
  } catch (err) {
    throw new AnylatError(
      'ANYLAT_LAB_STATE',
      `${statePath(dir)} is not valid JSON (${(err as Error).message}); run "anylat lab down" to clean up`,
    );
  }
}

export function writeState(dir: string, state: LabState): void {
  mkdirSync(dir, { recursive: true });
  const file = statePath(dir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

export function removeStateDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding `<dir>.lock` (next to the state directory, so `down` may remove the directory
 * while holding it). A lock left by a dead process is taken over.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const lock = `${dir.replace(/\/+$/, '')}.lock`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let text: string;
      let age: number;
      try {
        text = readFileSync(lock, 'utf8');
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue;
      }
      const holder = Number(text);
      // An empty file is a lock being written this instant, unless it has stayed empty.
      const stale = text === '' ? age > 5000 : !Number.isInteger(holder) || holder <= 0 || !pidAlive(holder);
      if (stale) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new AnylatError(
          'ANYLAT_LAB_BUSY',
          `another anylat lab command (pid ${text || 'unknown'}) holds ${lock}; wait for it or remove the file if that process is not anylat`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
