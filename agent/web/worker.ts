// The dashboard's own thread: the HTTP server and a read-only connection to the store file. Its
// synchronous SQLite reads, its JSON and its sockets never hold up the thread that started it (the
// agent's, whose event loop times the probes). Started by thread.ts; not an entry point of its own.
import type { Server } from 'node:http';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { AnylatError, errorMessage } from '../util/errors.ts';
import { closeServer, serveDashboard } from './http.ts';
import { fileSource, type QuerySource } from './source.ts';
import { WORKER_NICE, type FromWorker, type ToWorker, type WorkerData } from './thread.ts';

const port = parentPort;
if (port === null) throw new Error('agent/web/worker.ts runs as a worker thread (see thread.ts)');
const send = (m: FromWorker): void => port.postMessage(m);
const { storePath, binding, servicesTtlMs, metrics } = workerData as WorkerData;

// /metrics (web.metrics: true): the text comes from the agent's thread, which holds the counters.
const pendingMetrics = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
let metricsId = 0;
function requestMetrics(): Promise<string> {
  return new Promise((resolve, reject) => {
    const id = ++metricsId;
    pendingMetrics.set(id, { resolve, reject });
    send({ type: 'metrics-request', id });
  });
}

// On a busy machine (the agent's box has few cores) the dashboard gives way: on Linux a thread has
// its own nice value, and 0 names the calling thread, so this lowers only this one. Elsewhere it
// would lower the whole agent, so it is left alone.
if (process.platform === 'linux') {
  try {
    setPriority(0, WORKER_NICE);
  } catch {
    // not allowed here (a container without the capability): run at the agent's priority
  }
}

let source: QuerySource | undefined;
let server: Server | undefined;

port.on('message', (m: ToWorker) => {
  if (m.type === 'metrics') {
    const p = pendingMetrics.get(m.id);
    pendingMetrics.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(m.error));
    else p?.resolve(m.text ?? '');
    return;
  }
  if (m.type !== 'close') return;
  void (server ? closeServer(server) : Promise.resolve()).then(() => {
    source?.close();
    port.close();
  });
});

try {
  source = fileSource(storePath, servicesTtlMs);
  const served = await serveDashboard(
    source,
    binding,
    (line) => send({ type: 'log', line }),
    metrics === true ? requestMetrics : undefined,
  );
  server = served.server;
  send({ type: 'listening', port: served.port });
} catch (err) {
  source?.close();
  const e = err instanceof AnylatError ? err : undefined;
  send({
    type: 'failed',
    code: e?.code ?? 'ANYLAT_WEB_INTERNAL',
    exitCode: e?.exitCode ?? 1,
    message: errorMessage(err),
  });
  port.close();
}
