import { PROTOCOL_METRICS, PROTOCOLS } from "../core/model.js";
/** WHERE clause over `rounds r` (and `alias` for protocol/metric/scope when given). */
export function roundFilter(query, alias) {
    const parts = [];
    const params = {};
    if (query.since !== undefined) {
        parts.push('r.started_at >= @since');
        params.since = query.since;
    }
    if (query.until !== undefined) {
        parts.push('r.started_at < @until');
        params.until = query.until;
    }
    if (query.service !== undefined) {
        parts.push('r.service = @service');
        params.service = query.service;
    }
    if (query.agent !== undefined) {
        parts.push('r.agent = @agent');
        params.agent = query.agent;
    }
    if (alias !== undefined) {
        for (const k of ['protocol', 'metric', 'scope']) {
            const v = query[k];
            if (v !== undefined) {
                parts.push(`${alias}.${k} = @${k}`);
                params[k] = v;
            }
        }
    }
    return { where: parts.length === 0 ? '' : `WHERE ${parts.join(' AND ')}`, params };
}
export function benefitSeries(db, query) {
    const { where, params } = roundFilter(query, 'b');
    return db
        .prepare(`SELECT r.started_at AS t, r.agent, r.agent_region, r.service, b.protocol, b.metric, b.scope, b.baseline,
              b.anycast_p50_ms, b.baseline_p50_ms, b.saved_ms, b.saved_pct, b.ci_low_ms, b.ci_high_ms, b.win_rate, b.pairs
       FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}
       ORDER BY r.started_at, r.id, b.ord`)
        .all(params);
}
export function latencySeries(db, query) {
    const { where, params } = roundFilter(query, 'p');
    return db
        .prepare(`SELECT r.started_at AS t, r.agent, r.agent_region, r.service, p.endpoint, p.kind, p.protocol, p.metric, p.scope, p.site,
              p.p50_ms, p.p90_ms, p.p99_ms, p.loss_pct
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       ORDER BY r.started_at, r.id, p.ord`)
        .all(params);
}
export function lossSeries(db, query) {
    const { where, params } = roundFilter({ ...query, metric: undefined, scope: undefined }, 'p');
    return db
        .prepare(`SELECT r.started_at AS t, r.agent, r.agent_region, r.service, p.endpoint, p.kind, p.protocol,
              MAX(p.loss_pct) AS loss_pct, MAX(p.sent) AS sent, MIN(p.received) AS received
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       GROUP BY r.id, p.endpoint, p.protocol
       ORDER BY r.started_at, r.id, MIN(p.ord)`)
        .all(params);
}
/** Newest first. */
export function events(db, query) {
    const { where, params } = roundFilter({ since: query.since, until: query.until, service: query.service, agent: query.agent });
    return db
        .prepare(`SELECT e.at AS t, e.agent, r.agent_region, e.service, e.type, e.message, e.from_value AS "from", e.to_value AS "to"
       FROM events e JOIN rounds r ON r.id = e.round_id ${where}
       ORDER BY e.at DESC, e.id DESC LIMIT @limit`)
        .all({ ...params, limit: query.limit ?? 1000 });
}
/**
 * True when the file keeps round totals (`round_groups`, schema 2). A read-only handle on a file an
 * older agent still writes has not been migrated: the queries below then count the rounds instead.
 */
export function hasRoundGroups(db) {
    return db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'round_groups'`).get() !== undefined;
}
export function agentHealth(db, now, groups = true) {
    const lastRound = groups
        ? '(SELECT MAX(last_t) FROM round_groups g WHERE g.agent = h.agent)'
        : '(SELECT MAX(started_at) FROM rounds r WHERE r.agent = h.agent)';
    const rows = db
        .prepare(`SELECT h.agent, h.agent_region, h.at, h.body, ${lastRound} AS last_round_t FROM heartbeats h ORDER BY h.agent`)
        .all();
    return rows.map((r) => {
        const hb = JSON.parse(r.body);
        const out = { agent: r.agent, agent_region: r.agent_region, t: r.at, age_s: Math.max(0, (now - r.at) / 1000), last_round_t: r.last_round_t };
        for (const k of ['uptime_s', 'loop_lag_p99_ms', 'rounds_late', 'rounds_skipped', 'rounds_failed', 'outbox_rows', 'dead_letters', 'dropped_rows']) {
            if (typeof hb[k] === 'number')
                out[k] = hb[k];
        }
        if (typeof hb.version === 'string')
            out.version = hb.version;
        return out;
    });
}
export function services(db, groups = true) {
    const sql = groups
        ? 'SELECT service, agent, agent_region, rounds, first_t, last_t FROM round_groups ORDER BY service, agent, agent_region'
        : `SELECT service, agent, agent_region, COUNT(*) AS rounds, MIN(started_at) AS first_t, MAX(started_at) AS last_t
       FROM rounds GROUP BY service, agent, agent_region ORDER BY service, agent, agent_region`;
    return db.prepare(sql).all();
}
// ---------------------------------------------------------------- the dashboard's aggregates
// A dashboard window can hold tens of thousands of rounds. Turning each row into a JS object costs
// several times SQLite's whole scan, so these aggregate in SQL, hand value lists over as JSON
// arrays (json_group_array writes every double exactly) or read rows as plain arrays.
const SUMMARY_NUMERIC = ['anycast_p50_ms', 'baseline_p50_ms', 'saved_ms', 'saved_pct', 'ci_low_ms', 'ci_high_ms'];
/** report.ts's median (the middle value, or the mean of the two middle ones), on a typed array. */
function medianOf(values) {
    if (values.length === 0)
        return undefined;
    const s = Float64Array.from(values).sort();
    const mid = s.length >> 1;
    return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
function summaryOrder(r) {
    return [r.service, r.agent, r.scope === 'end_to_end' ? 0 : 1, PROTOCOLS.indexOf(r.protocol), PROTOCOL_METRICS[r.protocol].indexOf(r.metric)];
}
/**
 * The benefit table `anylat report` prints (report.ts: same rows, same numbers, same order),
 * aggregated in SQL. Medians sort a typed array, so a median of exactly zero may come out as -0
 * where report.ts gives 0 (JSON writes both as 0).
 */
export function benefitSummary(db, query) {
    const { where, params } = roundFilter(query);
    const from = `FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}`;
    const key = 'r.agent, r.service, b.protocol, b.metric, b.scope';
    const groups = db
        .prepare(`SELECT ${key}, COUNT(*) AS rounds, SUM(b.pairs) AS pairs, MIN(r.started_at) AS first_t, MAX(r.started_at) AS last_t,
         ${SUMMARY_NUMERIC.map((c) => `json_group_array(b.${c}) FILTER (WHERE b.${c} IS NOT NULL) AS ${c}`).join(',\n         ')},
         -- the mean adds in round order, as report.ts does, so both give the same last digit
         json_group_array(b.win_rate ORDER BY r.started_at, r.id) FILTER (WHERE b.win_rate IS NOT NULL) AS win_rate
       ${from} GROUP BY ${key}`)
        .all(params);
    // Baselines in the order they first appear, and the region of the newest round (an agent that
    // moved shows where it is now): small groups, one per baseline and region.
    const parts = db
        .prepare(`SELECT ${key}, b.baseline, r.agent_region, COUNT(*) AS n, MIN(r.started_at) AS first_t, MIN(r.id) AS first_id,
              MAX(r.started_at) AS last_t, MAX(r.id) AS last_id
       ${from} GROUP BY ${key}, b.baseline, r.agent_region
       ORDER BY MIN(r.started_at), MIN(r.id)`)
        .all(params);
    const keyOf = (g) => `${g.agent}\u0000${g.service}\u0000${g.protocol}\u0000${g.metric}\u0000${g.scope}`;
    const extra = new Map();
    for (const p of parts) {
        const k = keyOf(p);
        let e = extra.get(k);
        if (!e)
            extra.set(k, (e = { baselines: {}, region: p.agent_region, last: [p.last_t, p.last_id] }));
        e.baselines[p.baseline] = (e.baselines[p.baseline] ?? 0) + p.n;
        if (p.last_t > e.last[0] || (p.last_t === e.last[0] && p.last_id > e.last[1])) {
            e.region = p.agent_region;
            e.last = [p.last_t, p.last_id];
        }
    }
    const out = groups.map((g) => {
        const e = extra.get(keyOf(g));
        const row = {
            agent: g.agent,
            agent_region: e.region,
            service: g.service,
            protocol: g.protocol,
            metric: g.metric,
            scope: g.scope,
            rounds: g.rounds,
            first_round_at: new Date(g.first_t).toISOString(),
            last_round_at: new Date(g.last_t).toISOString(),
            pairs: g.pairs,
            baselines: e.baselines,
        };
        for (const c of SUMMARY_NUMERIC) {
            const m = medianOf(JSON.parse(g[c]));
            if (m !== undefined)
                row[c] = m;
        }
        const wins = JSON.parse(g.win_rate);
        if (wins.length > 0)
            row.win_rate = wins.reduce((a, b) => a + b, 0) / wins.length;
        return row;
    });
    return out.sort((a, b) => {
        const x = summaryOrder(a);
        const y = summaryOrder(b);
        for (let i = 0; i < x.length; i++)
            if (x[i] !== y[i])
                return x[i] < y[i] ? -1 : 1;
        return 0;
    });
}
/** The newest benefit row of `query.agent` in the window (for the given protocol and metric). */
export function latestBenefit(db, query) {
    const { where, params } = roundFilter(query, 'b');
    return db
        .prepare(`SELECT r.started_at AS t, r.agent, r.agent_region, r.service, b.protocol, b.metric, b.scope, b.baseline,
              b.anycast_p50_ms, b.baseline_p50_ms, b.saved_ms, b.saved_pct, b.ci_low_ms, b.ci_high_ms, b.win_rate, b.pairs
       FROM rounds r JOIN benefit b ON b.round_id = r.id ${where}
       ORDER BY r.started_at DESC, r.id DESC, b.ord DESC LIMIT 1`)
        .get(params);
}
/** benefitSeries as columns per agent (give protocol and metric: one row per round). */
export function benefitColumns(db, query) {
    const { where, params } = roundFilter(query, 'b');
    const rows = db
        .prepare(`SELECT r.agent, r.started_at, b.anycast_p50_ms, b.baseline_p50_ms, b.baseline, b.saved_ms, b.ci_low_ms, b.ci_high_ms
       FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}
       ORDER BY r.started_at, r.id, b.ord`)
        .raw(true)
        .iterate(params);
    const out = new Map();
    for (const [agent, t, anycast, base, baseline, saved, lo, hi] of rows) {
        let c = out.get(agent);
        if (!c)
            out.set(agent, (c = { t: [], anycast_p50_ms: [], baseline_p50_ms: [], baseline: [], saved_ms: [], ci_low_ms: [], ci_high_ms: [] }));
        c.t.push(t);
        c.anycast_p50_ms.push(anycast);
        c.baseline_p50_ms.push(base);
        c.baseline.push(baseline);
        c.saved_ms.push(saved);
        c.ci_low_ms.push(lo);
        c.ci_high_ms.push(hi);
    }
    return out;
}
/** Loss per agent and path (endpoint, protocol), in the order paths first appear. */
export function lossColumns(db, query) {
    const { where, params } = roundFilter({ ...query, metric: undefined, scope: undefined }, 'p');
    const rows = db
        .prepare(`SELECT r.agent, p.endpoint, p.kind, p.protocol, r.started_at, MAX(p.loss_pct), MAX(p.sent), MIN(p.received)
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       GROUP BY r.id, p.endpoint, p.protocol
       ORDER BY r.started_at, r.id, MIN(p.ord)`)
        .raw(true)
        .iterate(params);
    const out = new Map();
    for (const [agent, endpoint, kind, protocol, t, loss, sent, received] of rows) {
        const k = `${agent}\u0000${endpoint}\u0000${protocol}`;
        let c = out.get(k);
        if (!c)
            out.set(k, (c = { agent, endpoint, kind, protocol, t: [], loss_pct: [], sent: [], received: [] }));
        c.t.push(t);
        c.loss_pct.push(loss);
        c.sent.push(sent);
        c.received.push(received);
    }
    return [...out.values()];
}
/**
 * Runs of rounds per agent in which the anycast paths of `protocol`/`metric` reported the same
 * site(s), oldest first per agent. Computed in SQL: only the runs leave it, not the rounds.
 */
export function siteRuns(db, query) {
    const { where, params } = roundFilter({ since: query.since, until: query.until, service: query.service, agent: query.agent });
    const anycast = `p.round_id = r.id AND p.kind = 'anycast' AND p.protocol = @protocol AND p.metric = @metric`;
    return db
        .prepare(`WITH per_round AS (
         SELECT r.agent, r.started_at AS t, r.id,
                -- one round can hold several anycast paths (Global Accelerator's two addresses)
                (SELECT group_concat(site, ', ' ORDER BY site)
                   FROM (SELECT DISTINCT p.site FROM paths p WHERE ${anycast} AND p.site IS NOT NULL)) AS site
         FROM rounds r ${where}${where ? ' AND' : ' WHERE'} EXISTS (SELECT 1 FROM paths p WHERE ${anycast})
       ),
       marked AS (
         SELECT agent, t, id, site,
                CASE WHEN ROW_NUMBER() OVER w = 1 OR site IS NOT LAG(site) OVER w THEN 1 ELSE 0 END AS starts
         FROM per_round WINDOW w AS (PARTITION BY agent ORDER BY t, id)
       ),
       numbered AS (
         SELECT agent, t, site, SUM(starts) OVER (PARTITION BY agent ORDER BY t, id ROWS UNBOUNDED PRECEDING) AS run FROM marked
       )
       SELECT agent, site, MIN(t) AS from_t, MAX(t) AS to_t, COUNT(*) AS rounds
       FROM numbered GROUP BY agent, run ORDER BY agent, run`)
        .all({ ...params, protocol: query.protocol, metric: query.metric });
}
/** Sent and received summed over the window's rounds, per service, agent and path: the overview's loss, in one scan. */
export function lossTotals(db, query) {
    const { where, params } = roundFilter({ since: query.since, until: query.until, service: query.service, agent: query.agent });
    return db
        .prepare(`SELECT r.service, r.agent, p.endpoint, p.kind, p.protocol, p.metric, SUM(p.sent) AS sent, SUM(p.received) AS received
       FROM paths p JOIN rounds r ON r.id = p.round_id ${where}
       GROUP BY r.service, r.agent, p.endpoint, p.kind, p.protocol, p.metric`)
        .all(params);
}
