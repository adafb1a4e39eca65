import { PROTOCOL_METRICS, PROTOCOLS } from "../core/model.js";
import { roundFilter } from "./queries.js";
/** Median as InfluxQL computes it: the middle value, or the mean of the two middle values. */
export function median(values) {
    if (values.length === 0)
        return undefined;
    const s = [...values].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
export function mean(values) {
    if (values.length === 0)
        return undefined;
    return values.reduce((a, b) => a + b, 0) / values.length;
}
const NUMERIC = ['anycast_p50_ms', 'baseline_p50_ms', 'saved_ms', 'saved_pct', 'ci_low_ms', 'ci_high_ms'];
function order(r) {
    return [r.service, r.agent, r.scope === 'end_to_end' ? 0 : 1, PROTOCOLS.indexOf(r.protocol), PROTOCOL_METRICS[r.protocol].indexOf(r.metric)];
}
function compare(a, b) {
    const x = order(a);
    const y = order(b);
    for (let i = 0; i < x.length; i++) {
        if (x[i] < y[i])
            return -1;
        if (x[i] > y[i])
            return 1;
    }
    return 0;
}
export function benefitReport(db, query) {
    const { where, params } = roundFilter(query);
    const rows = db
        .prepare(`SELECT r.started_at, r.agent, r.agent_region, r.service, b.protocol, b.metric, b.scope, b.baseline,
              b.anycast_p50_ms, b.baseline_p50_ms, b.saved_ms, b.saved_pct, b.ci_low_ms, b.ci_high_ms, b.win_rate, b.pairs
       FROM benefit b JOIN rounds r ON r.id = b.round_id ${where}
       ORDER BY r.started_at, r.id, b.ord`)
        .all(params);
    const groups = new Map();
    for (const row of rows) {
        const key = JSON.stringify([row.agent, row.service, row.protocol, row.metric, row.scope]);
        const list = groups.get(key);
        if (list)
            list.push(row);
        else
            groups.set(key, [row]);
    }
    const out = [];
    for (const list of groups.values()) {
        const first = list[0];
        const last = list[list.length - 1];
        const baselines = {};
        for (const r of list)
            baselines[r.baseline] = (baselines[r.baseline] ?? 0) + 1;
        const report = {
            // The newest round names the region: an agent that moved shows where it is now.
            agent: first.agent,
            agent_region: last.agent_region,
            service: first.service,
            protocol: first.protocol,
            metric: first.metric,
            scope: first.scope,
            rounds: list.length,
            first_round_at: new Date(first.started_at).toISOString(),
            last_round_at: new Date(last.started_at).toISOString(),
            pairs: list.reduce((a, r) => a + r.pairs, 0),
            baselines,
        };
        for (const k of NUMERIC) {
            const m = median(list.map((r) => r[k]).filter((v) => v !== null));
            if (m !== undefined)
                report[k] = m;
        }
        const w = mean(list.map((r) => r.win_rate).filter((v) => v !== null));
        if (w !== undefined)
            report.win_rate = w;
        out.push(report);
    }
    return out.sort(compare);
}
