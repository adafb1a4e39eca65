// The JSON endpoints: path -> the parameters it takes and the query that answers it. The page
// uses exactly these; docs/web.md ("JSON endpoints") documents them for scripts.
import { parseParams, type ParamName, type Params } from './params.ts';
import type { DashboardQueries } from './queries.ts';

export interface ApiContext {
  queries: DashboardQueries;
  /** false while the store file does not exist yet */
  ready: boolean;
  now: number;
}

interface Endpoint {
  params: readonly ParamName[];
  summary: string;
  answer: (ctx: ApiContext, params: Params) => unknown;
}

const WINDOWED = ['service', 'since'] as const;

export const ENDPOINTS: Readonly<Record<string, Endpoint>> = {
  '/api/services': {
    params: [],
    summary: 'services in the store, with the agents that ran each and their round counts',
    answer: (ctx) => ctx.queries.services(ctx.ready),
  },
  '/api/overview': {
    params: ['since'],
    summary:
      'every service × region over the window: the headline metric of each service, saved ms, CI, loss, round interval',
    answer: (ctx, p) => ctx.queries.overview(p, ctx.now),
  },
  '/api/benefit': {
    params: [...WINDOWED, 'metric'],
    summary:
      "benefit per region over the window: the selected metric (default the service's headline metric) and every protocol/metric",
    answer: (ctx, p) => ctx.queries.benefit(p, ctx.now),
  },
  '/api/latency': {
    params: [...WINDOWED, 'metric'],
    summary: 'anycast and baseline p50 (and saved ms with its CI) per round, per region',
    answer: (ctx, p) => ctx.queries.latency(p, ctx.now),
  },
  '/api/loss': {
    params: WINDOWED,
    summary: 'loss per path (endpoint, protocol) per round, per region',
    answer: (ctx, p) => ctx.queries.loss(p, ctx.now),
  },
  '/api/sites': {
    params: [...WINDOWED, 'metric'],
    summary: 'which anycast site answered each region, as runs of rounds',
    answer: (ctx, p) => ctx.queries.sites(p, ctx.now),
  },
  '/api/events': {
    params: [...WINDOWED, 'limit'],
    summary: 'site changes and paths going down or up, newest first',
    answer: (ctx, p) => ctx.queries.events(p, ctx.now),
  },
  '/api/health': {
    params: [],
    summary: "each agent's last heartbeat (version, loop lag, rounds late, outbox, dead letters) and last round",
    answer: (ctx) => ctx.queries.health(ctx.now),
  },
};

/** `GET /api`: the endpoints and their parameters. */
export function apiIndex(): unknown {
  return {
    endpoints: Object.entries(ENDPOINTS).map(([path, e]) => ({ path, params: e.params, summary: e.summary })),
    params: {
      service: 'a service name from /api/services (default: the one measured most recently)',
      since: 'window ending now: 15m, 1h, 6h, 7d (default 1h)',
      metric:
        "protocol/metric such as udp/rtt (default: the service's headline metric: udp/rtt, else tcp/rtt, http/ttfb, tls/handshake)",
      limit: 'events to return, 1 to 1000 (default 200)',
    },
  };
}

/** Answers one API path, or undefined when the path is not an endpoint. Throws WebParamError for bad parameters. */
export function answerApi(path: string, query: URLSearchParams, ctx: ApiContext): unknown {
  if (path === '/api' || path === '/api/') {
    parseParams(query, []);
    return apiIndex();
  }
  const endpoint = ENDPOINTS[path];
  if (!endpoint) return undefined;
  return endpoint.answer(ctx, parseParams(query, endpoint.params));
}
