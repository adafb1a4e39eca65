// Runs the dashboard (HTTP server and store reads, see worker.ts) on a worker thread of its own.
// better-sqlite3 is synchronous: a query over a long window on the agent's thread delays every
// probe callback in flight, and the round then flags those samples and drops them from its
// statistics. On its own thread, the dashboard costs the agent's event loop nothing per request.
import { Worker } from 'node:worker_threads';
import { AnylatError, isErrorCode, errorMessage } from '../util/errors.ts';
import type { Binding } from './http.ts';
import { SERVICES_TTL_MS } from './source.ts';

/** What the worker is started with. */
export interface WorkerData {
  storePath: string;
  binding: Binding;
  servicesTtlMs: number;
  /** serve /metrics, asking the agent's thread for the text */
  metrics?: boolean;
}

export type ToWorker = { type: 'close' } | { type: 'metrics'; id: number; text?: string; error?: string };

export type FromWorker =
  | { type: 'listening'; port: number }
  | { type: 'metrics-request'; id: number }
  | { type: 'failed'; code: string; exitCode: number; message: string }
  | { type: 'log'; line: string };

/**
 * The worker's heap. A window is capped in rounds (see MAX_WINDOW_ROUNDS), which keeps an answer
 * well below this; should one still need more, the worker is stopped (not the agent) and started
 * again.
 */
export const WORKER_HEAP_MB = 512;
/** The dashboard thread's nice value on Linux: CPU goes to the agent's thread first. */
export const WORKER_NICE = 10;
/** How long close() lets a request in progress finish before stopping the thread. */
const CLOSE_GRACE_MS = 1_000;
/** Restarts after the thread died: at once, then backing off to this. */
const MAX_RESTART_DELAY_MS = 60_000;

export interface DashboardThread {
  /** the port bound (the real one when 0 was asked) */
  port: number;
  close(): Promise<void>;
}

/**
 * The worker's script. The compiled agent (bin/build.js) starts the compiled worker.js; run from
 * its TypeScript, the agent's tsx loader is not inherited by a worker, which registers it itself
 * before importing worker.ts.
 */
function workerScript(): string {
  const compiled = new URL(import.meta.url).pathname.endsWith('.js');
  const entry = new URL(compiled ? './worker.js' : './worker.ts', import.meta.url);
  if (compiled) return `import(${JSON.stringify(entry.href)});`;
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
}

/** One worker: resolves with it once it listens; rejects with its error when it cannot. */
function spawn(
  data: WorkerData,
  heapMb: number,
  log: (line: string) => void,
  onDied: (why: string) => void,
  metrics?: () => string,
): Promise<{ worker: Worker; port: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerScript(), {
      eval: true,
      workerData: data,
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
    });
    let listening = false;
    let failure: AnylatError | undefined;
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'log') log(m.line);
      else if (m.type === 'metrics-request') {
        let reply: ToWorker;
        try {
          reply = { type: 'metrics', id: m.id, text: metrics ? metrics() : '' };
        } catch (err) {
          reply = { type: 'metrics', id: m.id, error: errorMessage(err) };
        }
        worker.postMessage(reply);
      } else if (m.type === 'failed')
        failure = new AnylatError(isErrorCode(m.code) ? m.code : 'ANYLAT_WEB_INTERNAL', m.message);
      else {
        listening = true;
        // Its listening socket keeps the process alive, as an in-thread server's would.
        resolve({ worker, port: m.port });
      }
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const why =
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `it ran out of memory (${heapMb} MB) answering a request`
          : `its thread failed: ${err.stack ?? err.message}`;
      if (listening) onDied(why);
      else
        failure ??= new AnylatError('ANYLAT_WEB_WORKER', `web dashboard: cannot start its thread: ${err.message}`, {
          cause: err,
        });
    });
    worker.on('exit', (code) => {
      if (!listening)
        reject(
          failure ??
            new AnylatError('ANYLAT_WEB_WORKER', `web dashboard: its thread exited (${code}) before it listened`),
        );
    });
  });
}

/**
 * Starts the dashboard on its own thread over the store file `storePath` and resolves once it
 * listens. A thread that dies later (out of memory, a bug) is logged and started again on the
 * same port; its open requests fail (the page retries).
 */
export async function startDashboardThread(options: {
  storePath: string;
  binding: Binding;
  log: (line: string) => void;
  heapMb?: number;
  /** serve /metrics with this text (rendered on the caller's thread) */
  metrics?: () => string;
}): Promise<DashboardThread> {
  const data: WorkerData = {
    storePath: options.storePath,
    binding: options.binding,
    servicesTtlMs: SERVICES_TTL_MS,
    ...(options.metrics ? { metrics: true } : {}),
  };
  const keeper = new ThreadKeeper(data, options.heapMb ?? WORKER_HEAP_MB, options.log, options.metrics);
  const port = await keeper.start();
  return { port, close: () => keeper.close() };
}

/** Keeps one dashboard worker running: starts it, starts it again when it dies, stops it. */
class ThreadKeeper {
  private closed = false;
  private current: Worker | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private delay = 0;

  constructor(
    private readonly data: WorkerData,
    private readonly heapMb: number,
    private readonly log: (line: string) => void,
    private readonly metrics: (() => string) | undefined,
  ) {}

  async start(): Promise<number> {
    const w = await spawn(
      this.data,
      this.heapMb,
      this.log,
      (why) => {
        this.current = undefined;
        if (this.closed) return;
        this.log(`web dashboard: ${why}; starting it again`);
        this.schedule();
      },
      this.metrics,
    );
    if (this.closed) {
      await w.worker.terminate();
      return w.port;
    }
    this.current = w.worker;
    // The same port from now on, also when 0 was asked: the page's URL stays valid.
    this.data.binding = { ...this.data.binding, port: w.port };
    w.worker.once('exit', () => {
      if (this.current === w.worker && !this.closed) {
        this.current = undefined;
        this.log('web dashboard: its thread stopped; starting it again');
        this.schedule();
      }
    });
    return w.port;
  }

  private schedule(): void {
    if (this.closed || this.restartTimer !== undefined) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      this.start().then(
        () => {
          this.delay = 0;
        },
        (err: unknown) => {
          this.delay = Math.min(MAX_RESTART_DELAY_MS, Math.max(1_000, this.delay * 2));
          this.log(
            `web dashboard: could not start again (${(err as Error).message}); next try in ${this.delay / 1000} s`,
          );
          this.schedule();
        },
      );
    }, this.delay);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    const worker = this.current;
    this.current = undefined;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'close' } satisfies ToWorker);
    // A query in progress is synchronous: the close waits for it, up to the grace.
    const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
}
