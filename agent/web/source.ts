// Where the dashboard's answers come from: an open store handle, or a store file opened read-only
// once an agent has created it. Either runs on whichever thread answers the requests.
import { openStore, type Store } from '../store/index.ts';
import { AnylatError } from '../util/errors.ts';
import { DashboardQueries, EMPTY_STORE, type StoreReader } from './queries.ts';

/** The queries to answer with, and whether the store exists yet. */
export interface QuerySource {
  get(): { queries: DashboardQueries; ready: boolean };
  /** closes a store the source opened itself */
  close(): void;
}

/**
 * How long the list of services and agents is reused (see DashboardQueries): long enough for the
 * page's seven requests of one refresh to share it.
 */
export const SERVICES_TTL_MS = 1_000;

/** An open store; never closed here. */
export function storeSource(store: StoreReader, servicesTtlMs = SERVICES_TTL_MS): QuerySource {
  const queries = new DashboardQueries(store, servicesTtlMs);
  return { get: () => ({ queries, ready: true }), close: () => undefined };
}

/**
 * Opens `path` read-only when it exists, and tries again on later requests while no agent has
 * created it. Throws at once for a file that exists but cannot be read as a store.
 */
export function fileSource(path: string, servicesTtlMs = SERVICES_TTL_MS): QuerySource {
  let store: Store | undefined;
  let queries: DashboardQueries | undefined;
  const tryOpen = (): void => {
    try {
      store = openStore(path, { readonly: true });
      queries = new DashboardQueries(store, servicesTtlMs);
    } catch (err) {
      const code = err instanceof AnylatError ? err.code : '';
      if (code !== 'ANYLAT_STORE_MISSING' && code !== 'ANYLAT_STORE_EMPTY') throw err;
    }
  };
  tryOpen();
  const empty = new DashboardQueries(EMPTY_STORE);
  return {
    get: () => {
      if (queries === undefined) tryOpen();
      return queries === undefined ? { queries: empty, ready: false } : { queries, ready: true };
    },
    close: () => store?.close(),
  };
}
