// One API request in, one JSON reply out: the part of the server that reads the store. It runs on
// the dashboard's worker thread (or inline, see server.ts) and never touches a socket.
import { AnylatError } from '../util/errors.ts';
import { answerApi } from './api.ts';
import { WebParamError } from './params.ts';
import type { QuerySource } from './source.ts';

/** An API reply: status and the JSON text, encoded (its buffer can be moved between threads). */
export interface ApiReply {
  status: number;
  body: Uint8Array;
  /** a line for the agent's log (an internal error), never sent to the client */
  log?: string;
}

const encoder = new TextEncoder();

/** `{ error: { code, param?, message } }`, the shape of every API error. */
export function errorReply(status: number, code: string, message: string, param?: string): ApiReply {
  return jsonReply(status, { error: { code, ...(param === undefined ? {} : { param }), message } });
}

function jsonReply(status: number, value: unknown): ApiReply {
  return { status, body: encoder.encode(`${JSON.stringify(value)}\n`) };
}

/** Answers `path?search` (an /api path) at `now`. Never throws: a failure is a 4xx/5xx reply. */
export function answerRequest(source: QuerySource, path: string, search: string, now: number): ApiReply {
  try {
    const { queries, ready } = source.get();
    const body = answerApi(path, new URLSearchParams(search), { queries, ready, now });
    if (body === undefined) return errorReply(404, 'ANYLAT_WEB_NOT_FOUND', `no endpoint ${path}; GET /api lists them`);
    return jsonReply(200, body);
  } catch (err) {
    if (err instanceof WebParamError) return errorReply(400, err.code, err.message, err.param);
    const code = err instanceof AnylatError ? err.code : 'ANYLAT_WEB_INTERNAL';
    return {
      ...errorReply(500, code, 'the dashboard could not read the store; see the agent log'),
      log: `web dashboard: ${path} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    };
  }
}
