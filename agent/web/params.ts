// Query parameters of the JSON endpoints. Each endpoint declares the ones it reads; anything else
// (a typo such as `sinse`) is refused with a 400 naming it instead of being silently ignored.
import { METRICS, PROTOCOL_METRICS, PROTOCOLS, type Metric, type Protocol } from '../core/model.ts';
import { formatDuration, parseDuration } from '../util/duration.ts';
import { AnylatError } from '../util/errors.ts';

/** A bad query parameter: the server answers 400 with `{ error: { code, param, message } }`. */
export class WebParamError extends AnylatError {
  readonly param: string;

  constructor(param: string, message: string) {
    super('ANYLAT_WEB_PARAM', `${param}: ${message}`);
    this.name = 'WebParamError';
    this.param = param;
  }
}

export const DEFAULT_SINCE = '1h';
/** The longest window: more than the store's default retention (30 d), so every stored round fits. */
export const MAX_SINCE_MS = 400 * 86_400_000;
export const DEFAULT_EVENT_LIMIT = 200;
export const MAX_EVENT_LIMIT = 1000;

export type ParamName = 'service' | 'since' | 'metric' | 'limit';

export interface Params {
  service?: string;
  /** window length in ms and how the caller wrote it */
  sinceMs: number;
  since: string;
  metric?: { protocol: Protocol; metric: Metric };
  limit: number;
}

function single(query: URLSearchParams, name: string): string | undefined {
  const all = query.getAll(name);
  if (all.length > 1) throw new WebParamError(name, `given ${all.length} times; give it once`);
  return all[0];
}

/** `udp/rtt` -> { protocol, metric }; the metric must be one the protocol reports. */
export function parseMetric(text: string): { protocol: Protocol; metric: Metric } {
  const [p, m, ...rest] = text.split('/');
  const protocol = PROTOCOLS.find((x) => x === p);
  const metric = METRICS.find((x) => x === m);
  if (rest.length > 0 || protocol === undefined || metric === undefined) {
    throw new WebParamError('metric', `expected protocol/metric such as udp/rtt or http/ttfb, got "${text}"`);
  }
  if (!PROTOCOL_METRICS[protocol].includes(metric)) {
    throw new WebParamError(
      'metric',
      `${protocol} has no metric "${metric}" (it reports ${PROTOCOL_METRICS[protocol].join(', ')})`,
    );
  }
  return { protocol, metric };
}

/** Reads the parameters `allowed` from `query`; throws WebParamError for any other or a bad value. */
export function parseParams(query: URLSearchParams, allowed: readonly ParamName[]): Params {
  for (const name of new Set(query.keys())) {
    if (!(allowed as readonly string[]).includes(name)) {
      const known =
        allowed.length === 0 ? 'this endpoint takes no parameters' : `this endpoint takes ${allowed.join(', ')}`;
      throw new WebParamError(name, `unknown parameter; ${known}`);
    }
  }
  const out: Params = {
    sinceMs: parseDuration(DEFAULT_SINCE, 'since'),
    since: DEFAULT_SINCE,
    limit: DEFAULT_EVENT_LIMIT,
  };

  const service = single(query, 'service');
  if (service !== undefined) {
    // Service names come from the config (isName); anything else cannot match a stored round.
    if (service === '' || service.length > 200 || /[\u0000-\u001f\u007f]/.test(service)) {
      throw new WebParamError(
        'service',
        'expected a service name as configured (non-empty, printable, at most 200 characters)',
      );
    }
    out.service = service;
  }

  const since = single(query, 'since');
  if (since !== undefined) {
    let ms: number;
    try {
      ms = parseDuration(since, 'since');
    } catch {
      throw new WebParamError('since', `expected a duration like 15m, 1h, 6h or 7d, got "${since}"`);
    }
    if (ms <= 0 || ms > MAX_SINCE_MS) {
      throw new WebParamError(
        'since',
        `expected a duration above 0 and at most ${formatDuration(MAX_SINCE_MS)}, got "${since}"`,
      );
    }
    out.sinceMs = ms;
    out.since = since;
  }

  const metric = single(query, 'metric');
  if (metric !== undefined) out.metric = parseMetric(metric);

  const limit = single(query, 'limit');
  if (limit !== undefined) {
    if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_EVENT_LIMIT) {
      throw new WebParamError('limit', `expected a whole number from 1 to ${MAX_EVENT_LIMIT}, got "${limit}"`);
    }
    out.limit = Number(limit);
  }
  return out;
}
