// The dashboard's HTTP side: node:http, a fixed table of static files, the JSON endpoints, strict
// security headers, the Host check. It runs on whichever thread reads the store (the dashboard's
// worker thread, see thread.ts, or the caller's when inline), so a reply's bytes never pass
// through another thread.
import { createServer } from 'node:http';
import { isIP } from 'node:net';
import { AnylatError } from "../util/errors.js";
import { answerRequest, errorReply } from "./answer.js";
import { isLoopbackIp } from "./listen.js";
import { loadStatic } from "./static.js";
export const SECURITY_HEADERS = {
    'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
};
function send(res, status, type, body, head, extra = {}) {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': String(buf.byteLength), ...extra });
    res.end(head ? undefined : buf);
}
function sendJson(res, status, body, head) {
    send(res, status, 'application/json; charset=utf-8', body, head, { 'Cache-Control': 'no-store' });
}
/** Host names a loopback dashboard answers to; anything else is a DNS-rebinding attempt or a mistake. */
function loopbackHostOk(hostHeader, boundHost) {
    if (hostHeader === undefined)
        return false;
    const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(hostHeader.trim());
    if (!m)
        return false;
    const name = (m[1] ?? m[2]).toLowerCase();
    return name === 'localhost' || name === boundHost.toLowerCase() || (isIP(name) !== 0 && isLoopbackIp(name));
}
/**
 * Serves the page and the API over `source` on `binding`; resolves with the listening server and
 * its port. Fails with ANYLAT_WEB_LISTEN (exit code 2) when the address cannot be bound, and at
 * once when a file of the page is missing.
 */
export async function serveDashboard(source, binding, log) {
    const files = loadStatic();
    const handle = (req, res) => {
        const head = req.method === 'HEAD';
        if (req.method !== 'GET' && !head) {
            send(res, 405, 'application/json; charset=utf-8', '{"error":{"code":"ANYLAT_WEB_METHOD","message":"only GET and HEAD"}}\n', false, { Allow: 'GET, HEAD' });
            return;
        }
        if (binding.loopback && !loopbackHostOk(req.headers.host, binding.host)) {
            sendJson(res, 421, errorReply(421, 'ANYLAT_WEB_HOST', `this dashboard answers on loopback only; open http://${binding.shown}/`).body, head);
            return;
        }
        let url;
        try {
            url = new URL(req.url ?? '/', 'http://dashboard.invalid');
        }
        catch {
            sendJson(res, 400, errorReply(400, 'ANYLAT_WEB_URL', 'malformed request URL').body, head);
            return;
        }
        if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
            const reply = answerRequest(source, url.pathname, url.search, Date.now());
            if (reply.log !== undefined)
                log(reply.log);
            sendJson(res, reply.status, reply.body, head);
            return;
        }
        const file = files.get(url.pathname);
        if (!file) {
            send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
            return;
        }
        send(res, 200, file.type, file.body, head, { 'Cache-Control': 'no-cache' });
    };
    const server = createServer(handle);
    try {
        await new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(binding.port, binding.bind, () => {
                server.off('error', reject);
                resolve();
            });
        });
    }
    catch (err) {
        const code = err.code;
        const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EADDRNOTAVAIL' ? 'no interface has that address' : err.message;
        throw new AnylatError('ANYLAT_WEB_LISTEN', `web dashboard: cannot listen on ${binding.shown}: ${why}; set web.listen to another address or port`, {
            exitCode: 2,
            cause: err,
        });
    }
    server.on('error', (err) => log(`web dashboard: ${err.message}`));
    const bound = server.address();
    return { server, port: typeof bound === 'object' && bound !== null ? bound.port : binding.port };
}
/** Stops listening and drops open connections (a page's keep-alive ones included). */
export function closeServer(server) {
    return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
    });
}
