import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { AnylatError } from "../util/errors.js";
import { closeServer, serveDashboard } from "./http.js";
import { fileSource } from "./source.js";
import { WORKER_NICE } from "./thread.js";
const port = parentPort;
if (port === null)
    throw new Error('agent/web/worker.ts runs as a worker thread (see thread.ts)');
const send = (m) => port.postMessage(m);
const { storePath, binding, servicesTtlMs } = workerData;
// On a busy machine (the agent's box has few cores) the dashboard gives way: on Linux a thread has
// its own nice value, and 0 names the calling thread, so this lowers only this one. Elsewhere it
// would lower the whole agent, so it is left alone.
if (process.platform === 'linux') {
    try {
        setPriority(0, WORKER_NICE);
    }
    catch {
        // not allowed here (a container without the capability): run at the agent's priority
    }
}
let source;
let server;
port.on('message', (m) => {
    if (m.type !== 'close')
        return;
    void (server ? closeServer(server) : Promise.resolve()).then(() => {
        source?.close();
        port.close();
    });
});
try {
    source = fileSource(storePath, servicesTtlMs);
    const served = await serveDashboard(source, binding, (line) => send({ type: 'log', line }));
    server = served.server;
    send({ type: 'listening', port: served.port });
}
catch (err) {
    source?.close();
    const e = err instanceof AnylatError ? err : undefined;
    send({ type: 'failed', code: e?.code ?? 'ANYLAT_WEB_INTERNAL', exitCode: e?.exitCode ?? 1, message: err instanceof Error ? err.message : String(err) });
    port.close();
}
