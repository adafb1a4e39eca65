// One API request in, one JSON reply out: the part of the server that reads the store. It runs on
// the dashboard's worker thread (or inline, see server.ts) and never touches a socket.
import { AnylatError } from "../util/errors.js";
import { answerApi } from "./api.js";
import { WebParamError } from "./params.js";
const encoder = new TextEncoder();
/** `{ error: { code, param?, message } }`, the shape of every API error. */
export function errorReply(status, code, message, param) {
    return jsonReply(status, { error: { code, ...(param === undefined ? {} : { param }), message } });
}
function jsonReply(status, value) {
    return { status, body: encoder.encode(`${JSON.stringify(value)}\n`) };
}
/** Answers `path?search` (an /api path) at `now`. Never throws: a failure is a 4xx/5xx reply. */
export function answerRequest(source, path, search, now) {
    try {
        const { queries, ready } = source.get();
        const body = answerApi(path, new URLSearchParams(search), { queries, ready, now });
        if (body === undefined)
            return errorReply(404, 'ANYLAT_WEB_NOT_FOUND', `no endpoint ${path}; GET /api lists them`);
        return jsonReply(200, body);
    }
    catch (err) {
        if (err instanceof WebParamError)
            return errorReply(400, err.code, err.message, err.param);
        const code = err instanceof AnylatError ? err.code : 'ANYLAT_WEB_INTERNAL';
        return {
            ...errorReply(500, code, 'the dashboard could not read the store; see the agent log'),
            log: `web dashboard: ${path} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        };
    }
}
