// Where the dashboard's answers come from: an open store handle, or a store file opened read-only
// once an agent has created it. Either runs on whichever thread answers the requests.
import { openStore } from "../store/index.js";
import { AnylatError } from "../util/errors.js";
import { DashboardQueries, EMPTY_STORE } from "./queries.js";
/**
 * How long the list of services and agents is reused (see DashboardQueries): long enough for the
 * page's seven requests of one refresh to share it.
 */
export const SERVICES_TTL_MS = 1_000;
/** An open store; never closed here. */
export function storeSource(store, servicesTtlMs = SERVICES_TTL_MS) {
    const queries = new DashboardQueries(store, servicesTtlMs);
    return { get: () => ({ queries, ready: true }), close: () => undefined };
}
/**
 * Opens `path` read-only when it exists, and tries again on later requests while no agent has
 * created it. Throws at once for a file that exists but cannot be read as a store.
 */
export function fileSource(path, servicesTtlMs = SERVICES_TTL_MS) {
    let store;
    let queries;
    const tryOpen = () => {
        try {
            store = openStore(path, { readonly: true });
            queries = new DashboardQueries(store, servicesTtlMs);
        }
        catch (err) {
            const code = err instanceof AnylatError ? err.code : '';
            if (code !== 'ANYLAT_STORE_MISSING' && code !== 'ANYLAT_STORE_EMPTY')
                throw err;
        }
    };
    tryOpen();
    const empty = new DashboardQueries(EMPTY_STORE);
    return {
        get: () => {
            if (queries === undefined)
                tryOpen();
            return queries === undefined ? { queries: empty, ready: false } : { queries, ready: true };
        },
        close: () => store?.close(),
    };
}
