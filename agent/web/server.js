import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { AnylatError } from "../util/errors.js";
import { closeServer, serveDashboard } from "./http.js";
import { hostPort, parseListen, resolveListen } from "./listen.js";
import { fileSource, storeSource } from "./source.js";
import { startDashboardThread } from "./thread.js";
export { SECURITY_HEADERS } from "./http.js";
/** A store file another connection can open: not `:memory:` or a temporary database. */
function fileOf(store) {
    const path = store.path;
    return path === undefined || path === '' || path === ':memory:' || path.startsWith('file:') ? undefined : resolvePath(path);
}
/** The dashboard on the caller's thread. */
async function serveInline(source, binding, log) {
    let server;
    let port;
    try {
        ({ server, port } = await serveDashboard(source, binding, log));
    }
    catch (err) {
        source.close();
        throw err;
    }
    return { port, close: () => closeServer(server).then(() => source.close()) };
}
/**
 * Starts the dashboard. Refuses (ANYLAT_WEB_PUBLIC, exit code 2) an address other hosts can reach
 * unless `allowPublic` is set; fails with ANYLAT_WEB_LISTEN when the address cannot be bound.
 */
export async function startWebServer(options) {
    const log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    if ((options.store === undefined) === (options.storePath === undefined)) {
        throw new AnylatError('ANYLAT_WEB_OPTIONS', 'startWebServer: give exactly one of store and storePath');
    }
    const addr = parseListen(options.listen);
    const { bind, loopback } = await resolveListen(addr);
    const shown = hostPort(addr.host, addr.port);
    if (!loopback) {
        if (options.allowPublic !== true) {
            throw new AnylatError('ANYLAT_WEB_PUBLIC', `web dashboard: ${shown} is reachable from other hosts and the page has no authentication; listen on 127.0.0.1 (the default), or set web.listen to this address explicitly in the config to allow it`, { exitCode: 2 });
        }
        log(`warning: web dashboard listens on ${shown}, reachable from other hosts without authentication; it shows measurements only, never config or tokens`);
    }
    const binding = { bind, port: addr.port, loopback, host: addr.host, shown };
    const file = options.storePath ?? fileOf(options.store);
    const running = options.inline === true || file === undefined
        ? await serveInline(options.storePath !== undefined ? fileSource(options.storePath) : storeSource(options.store), binding, log)
        : await startDashboardThread({ storePath: file, binding, log });
    const url = `http://${hostPort(isIP(addr.host) !== 0 ? addr.host : bind, running.port)}/`;
    log(`web dashboard on ${url}`);
    return { url, host: bind, port: running.port, close: () => running.close() };
}
