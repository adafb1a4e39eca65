// What the dashboard's JSON endpoints answer, computed from the store's public read API. Nothing
// here writes; everything takes `now` so a response describes one instant. The heavy lifting
// (medians over a window, site runs) is done in SQL by the store; this shapes it for the page.
import { PROTOCOL_METRICS, PROTOCOLS } from "../core/model.js";
import { median } from "../store/index.js";
import { WebParamError } from "./params.js";
/** Stands in for a store file no agent has created yet: every query is empty. */
export const EMPTY_STORE = {
    services: () => [],
    benefitSummary: () => [],
    latestBenefit: () => undefined,
    benefitColumns: () => new Map(),
    lossColumns: () => [],
    lossTotals: () => [],
    siteRuns: () => [],
    events: () => [],
    agentHealth: () => [],
    rounds: () => [],
};
/** The service measured most recently (ties: first by name): what a page opened without a choice shows. */
function defaultService(rows) {
    let best;
    for (const r of rows) {
        if (!best || r.last_t > best.last_t || (r.last_t === best.last_t && r.service < best.service))
            best = r;
    }
    return best?.service ?? null;
}
/**
 * A heartbeat older than this is late: the agent writes one every 60 s (HEARTBEAT_INTERVAL_MS in
 * agent/agent.ts, which a test keeps in step), so three missed ones.
 */
export const HEARTBEAT_LATE_AFTER_S = 180;
/** 45 s, 20 min, 3.0 h: how long ago, for the health notes a person reads. */
function human(s) {
    if (s < 90)
        return `${Math.round(s)} s`;
    if (s < 5400)
        return `${Math.round(s / 60)} min`;
    return `${(s / 3600).toFixed(1)} h`;
}
const metricKey = (protocol, metric) => `${protocol}/${metric}`;
/**
 * The headline metric when none is asked for, in order of preference: the end-to-end primary of what
 * the service measures. Never `http/dns` (it times the resolver, not the path); a service measuring
 * none of these gets its first end-to-end metric other than that.
 */
export const PRIMARY_METRICS = [
    ['udp', 'rtt'],
    ['tcp', 'rtt'],
    ['http', 'ttfb'],
    ['tls', 'handshake'],
];
/** The metric a view shows by default among `options` (see PRIMARY_METRICS). */
export function defaultMetric(options) {
    const e2e = options.filter((o) => o.scope === 'end_to_end');
    for (const [protocol, metric] of PRIMARY_METRICS) {
        const found = e2e.find((o) => o.protocol === protocol && o.metric === metric);
        if (found)
            return found;
    }
    return e2e.find((o) => !(o.protocol === 'http' && o.metric === 'dns')) ?? e2e[0] ?? null;
}
/** Median gap between sorted start times, in seconds; null with fewer than two. */
function medianGapS(starts) {
    const gaps = starts.slice(1).map((t, i) => t - starts[i]);
    const m = median(gaps);
    return m === undefined ? null : m / 1000;
}
function byRegion(a, b) {
    return a.agent_region.localeCompare(b.agent_region) || a.agent.localeCompare(b.agent);
}
function canonicalOrder(a, b) {
    return (PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol) ||
        PROTOCOL_METRICS[a.protocol].indexOf(a.metric) - PROTOCOL_METRICS[b.protocol].indexOf(b.metric));
}
/** Read-only answers for the dashboard over one store (or EMPTY_STORE). */
export class DashboardQueries {
    store;
    servicesTtlMs;
    servicesCache;
    /**
     * `servicesTtlMs`: how long the list of services and agents is reused. The store keeps it as
     * totals (cheap at any size) except on a file an older agent still writes, where listing counts
     * every round; a new agent or service shows up that much later. An unknown `service` always
     * re-reads the list.
     */
    constructor(store, servicesTtlMs = 0) {
        this.store = store;
        this.servicesTtlMs = servicesTtlMs;
    }
    serviceRows(fresh = false) {
        const t = performance.now();
        if (fresh || this.servicesCache === undefined || t - this.servicesCache.at >= this.servicesTtlMs) {
            const rows = this.store.services();
            // An empty store is cheap to ask again, and its first round should show at once.
            this.servicesCache = rows.length === 0 ? undefined : { at: t, rows };
            return rows;
        }
        return this.servicesCache.rows;
    }
    services(ready) {
        const rows = this.serviceRows();
        const map = new Map();
        for (const r of rows) {
            let s = map.get(r.service);
            if (!s) {
                s = { service: r.service, rounds: 0, last_t: r.last_t, agents: [] };
                map.set(r.service, s);
            }
            s.rounds += r.rounds;
            s.last_t = Math.max(s.last_t, r.last_t);
            s.agents.push({ agent: r.agent, agent_region: r.agent_region, rounds: r.rounds, first_t: r.first_t, last_t: r.last_t });
        }
        const services = [...map.values()].sort((a, b) => a.service.localeCompare(b.service));
        for (const s of services)
            s.agents.sort(byRegion);
        return { store_ready: ready, default_service: defaultService(rows), services };
    }
    /** The service a request is about: the one asked for (which must exist) or the default. */
    window(params, now) {
        let rows = this.serviceRows();
        if (params.service !== undefined && !rows.some((r) => r.service === params.service))
            rows = this.serviceRows(true);
        const names = [...new Set(rows.map((r) => r.service))].sort();
        let service;
        if (params.service !== undefined) {
            if (!names.includes(params.service)) {
                const known = names.length === 0 ? 'the store holds no rounds yet' : `known services: ${names.join(', ')}`;
                throw new WebParamError('service', `no rounds of service "${params.service}" in the store; ${known}`);
            }
            service = params.service;
        }
        else {
            service = defaultService(rows);
        }
        // Latest region of each agent that ever ran the service: one that stopped still gets a row.
        const agents = new Map();
        for (const r of rows) {
            if (r.service !== service)
                continue;
            const prev = agents.get(r.agent);
            if (!prev || r.last_t > prev.last_t)
                agents.set(r.agent, { agent: r.agent, agent_region: r.agent_region, last_t: r.last_t });
        }
        return {
            service,
            since: params.since,
            from_t: now - params.sinceMs,
            to_t: now,
            agents: [...agents.values()].map(({ agent, agent_region }) => ({ agent, agent_region })).sort(byRegion),
        };
    }
    windowOnly(w) {
        return { service: w.service, since: w.since, from_t: w.from_t, to_t: w.to_t };
    }
    /** Metrics present in the window, and the one to show: the asked one, else the first end-to-end. */
    selectMetric(rows, params) {
        const map = new Map();
        for (const r of rows) {
            const key = metricKey(r.protocol, r.metric);
            let o = map.get(key);
            if (!o) {
                o = { key, protocol: r.protocol, metric: r.metric, scope: r.scope, agents: 0, agentSet: new Set() };
                map.set(key, o);
            }
            if (r.scope === 'end_to_end')
                o.scope = 'end_to_end';
            o.agentSet.add(r.agent);
        }
        const options = [...map.values()]
            .map(({ agentSet, ...o }) => ({ ...o, agents: agentSet.size }))
            .sort((a, b) => (a.scope === b.scope ? 0 : a.scope === 'end_to_end' ? -1 : 1) || canonicalOrder(a, b));
        if (params.metric) {
            const key = metricKey(params.metric.protocol, params.metric.metric);
            // A metric without rows in this window is still a valid choice: its rows are simply empty.
            const found = options.find((o) => o.key === key);
            return { options, selected: found ?? { key, ...params.metric, scope: 'end_to_end', agents: 0 } };
        }
        return { options, selected: defaultMetric(options) };
    }
    selectedMetric(w, params) {
        if (w.service === null)
            return null;
        // Named: no need to summarise the window (the costliest query) just to find the default.
        if (params.metric)
            return { key: metricKey(params.metric.protocol, params.metric.metric), ...params.metric };
        return this.selectMetric(this.store.benefitSummary({ since: w.from_t, until: w.to_t + 1, service: w.service }), params).selected;
    }
    benefit(params, now) {
        const w = this.window(params, now);
        const empty = { ...this.windowOnly(w), metric: null, scope: null, metrics: [], regions: [] };
        if (w.service === null)
            return empty;
        const rows = this.store.benefitSummary({ since: w.from_t, until: now + 1, service: w.service });
        const { options, selected } = this.selectMetric(rows, params);
        const sites = selected ? this.siteRuns(w, selected) : new Map();
        const regions = w.agents.map(({ agent, agent_region }) => {
            const mine = rows.filter((r) => r.agent === agent);
            // Prefer the end-to-end row when an agent changed terminatesTcp inside the window.
            const chosen = selected
                ? mine
                    .filter((r) => r.protocol === selected.protocol && r.metric === selected.metric)
                    .sort((a, b) => (a.scope === b.scope ? 0 : a.scope === 'end_to_end' ? -1 : 1))[0]
                : undefined;
            const last = selected
                ? this.store.latestBenefit({ since: w.from_t, until: now + 1, service: w.service, agent, protocol: selected.protocol, metric: selected.metric })
                : undefined;
            const segs = sites.get(agent) ?? [];
            const lastRound = mine.reduce((t, r) => Math.max(t ?? 0, Date.parse(r.last_round_at)), null);
            return {
                agent,
                agent_region: mine[mine.length - 1]?.agent_region ?? agent_region,
                headline: chosen ? headlineOf(chosen) : null,
                latest: last
                    ? {
                        t: last.t,
                        baseline: last.baseline,
                        anycast_p50_ms: last.anycast_p50_ms,
                        baseline_p50_ms: last.baseline_p50_ms,
                        saved_ms: last.saved_ms,
                        ci_low_ms: last.ci_low_ms,
                        ci_high_ms: last.ci_high_ms,
                        win_rate: last.win_rate,
                    }
                    : null,
                site: segs[segs.length - 1]?.site ?? null,
                last_round_t: lastRound,
                rows: mine,
            };
        });
        return { ...empty, metric: selected?.key ?? null, scope: selected?.scope ?? null, metrics: options, regions };
    }
    latency(params, now) {
        const w = this.window(params, now);
        const selected = this.selectedMetric(w, params);
        const out = { ...this.windowOnly(w), metric: selected?.key ?? null, regions: [] };
        if (w.service === null || selected === null)
            return out;
        const columns = this.store.benefitColumns({ since: w.from_t, until: now + 1, service: w.service, protocol: selected.protocol, metric: selected.metric });
        out.regions = w.agents.map(({ agent, agent_region }) => {
            const none = { t: [], anycast_p50_ms: [], baseline_p50_ms: [], baseline: [], saved_ms: [], ci_low_ms: [], ci_high_ms: [] };
            return { agent, agent_region, ...(columns.get(agent) ?? none) };
        });
        return out;
    }
    loss(params, now) {
        const w = this.window(params, now);
        const out = { ...this.windowOnly(w), regions: [] };
        if (w.service === null)
            return out;
        const columns = this.store.lossColumns({ since: w.from_t, until: now + 1, service: w.service });
        out.regions = w.agents.map(({ agent, agent_region }) => {
            const list = columns
                .filter((c) => c.agent === agent)
                .map(({ agent: _agent, ...path }) => path)
                .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'anycast' ? -1 : 1) ||
                a.endpoint.localeCompare(b.endpoint) ||
                PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol));
            return { agent, agent_region, paths: list };
        });
        return out;
    }
    /** Runs of rounds in which the same anycast site answered the selected protocol, per agent. */
    siteRuns(w, selected) {
        const out = new Map();
        if (w.service === null)
            return out;
        const runs = this.store.siteRuns({ since: w.from_t, until: w.to_t + 1, service: w.service, protocol: selected.protocol, metric: selected.metric });
        for (const { agent, ...segment } of runs) {
            let segs = out.get(agent);
            if (!segs)
                out.set(agent, (segs = []));
            segs.push(segment);
        }
        return out;
    }
    sites(params, now) {
        const w = this.window(params, now);
        const selected = this.selectedMetric(w, params);
        const out = { ...this.windowOnly(w), metric: selected?.key ?? null, regions: [] };
        if (selected === null)
            return out;
        const runs = this.siteRuns(w, selected);
        out.regions = w.agents.map(({ agent, agent_region }) => {
            const segments = runs.get(agent) ?? [];
            return { agent, agent_region, current: segments[segments.length - 1]?.site ?? null, segments };
        });
        return out;
    }
    events(params, now) {
        const w = this.window(params, now);
        const events = w.service === null ? [] : this.store.events({ since: w.from_t, until: now + 1, service: w.service, limit: params.limit });
        return { ...this.windowOnly(w), events };
    }
    /**
     * Median gaps between rounds over the last hour, in seconds (null with fewer than 2): per agent
     * over all its services (`all`), and per agent and service.
     */
    roundIntervals(now) {
        const starts = new Map();
        const perService = new Map();
        for (const r of this.store.rounds({ since: now - 3_600_000 })) {
            const t = Date.parse(r.started_at);
            let all = starts.get(r.agent);
            if (!all)
                starts.set(r.agent, (all = new Set()));
            all.add(t);
            let mine = perService.get(r.agent);
            if (!mine)
                perService.set(r.agent, (mine = new Map()));
            let list = mine.get(r.service);
            if (!list)
                mine.set(r.service, (list = []));
            list.push(t);
        }
        const sorted = (ts) => [...ts].sort((a, b) => a - b);
        const all = new Map([...starts].map(([agent, ts]) => [agent, medianGapS(sorted(ts))]));
        const byService = new Map([...perService].map(([agent, m]) => [agent, new Map([...m].map(([service, ts]) => [service, medianGapS(sorted(new Set(ts)))]))]));
        return { all, byService };
    }
    /**
     * Every service × region over the window: the headline metric each service's own view opens on,
     * its saved ms, CI and verdict inputs, and its loss. One summary query for all services.
     */
    overview(params, now) {
        const from = now - params.sinceMs;
        const rows = this.store.benefitSummary({ since: from, until: now + 1 });
        const losses = this.store.lossTotals({ since: from, until: now + 1 });
        const intervals = this.roundIntervals(now).byService;
        // Every agent that ever ran each service, in its latest region: one that stopped still gets a row.
        const agents = new Map();
        for (const r of this.serviceRows()) {
            let m = agents.get(r.service);
            if (!m)
                agents.set(r.service, (m = new Map()));
            const prev = m.get(r.agent);
            if (!prev || r.last_t > prev.last_t)
                m.set(r.agent, { agent_region: r.agent_region, last_t: r.last_t });
        }
        const services = [...agents.keys()].sort().map((service) => {
            const mine = rows.filter((r) => r.service === service);
            const { selected } = this.selectMetric(mine, params);
            const regions = [...agents.get(service)]
                .map(([agent, a]) => ({ agent, agent_region: a.agent_region, last_t: a.last_t }))
                .sort(byRegion)
                .map(({ agent, agent_region, last_t }) => {
                const chosen = selected
                    ? mine
                        .filter((r) => r.agent === agent && r.protocol === selected.protocol && r.metric === selected.metric)
                        .sort((a, b) => (a.scope === b.scope ? 0 : a.scope === 'end_to_end' ? -1 : 1))[0]
                    : undefined;
                const loss = selected ? lossOf(losses.filter((l) => l.service === service && l.agent === agent && l.protocol === selected.protocol)) : undefined;
                return {
                    agent,
                    agent_region: chosen?.agent_region ?? agent_region,
                    headline: chosen ? headlineOf(chosen) : null,
                    anycast_loss_pct: loss?.anycast ?? null,
                    unicast_loss_pct: loss?.unicast ?? null,
                    unicast_loss_endpoint: loss?.unicastEndpoint ?? null,
                    last_round_t: last_t,
                    interval_s: intervals.get(agent)?.get(service) ?? null,
                };
            });
            return { service, metric: selected?.key ?? null, scope: selected?.scope ?? null, regions };
        });
        return { since: params.since, from_t: from, to_t: now, services };
    }
    health(now) {
        const beats = new Map(this.store.agentHealth(now).map((h) => [h.agent, h]));
        // Agents that wrote rounds but never a heartbeat are listed too: silence is what to show.
        const known = new Map();
        for (const s of this.serviceRows()) {
            const prev = known.get(s.agent);
            if (!prev || s.last_t > prev.last_t)
                known.set(s.agent, { agent_region: s.agent_region, last_t: s.last_t });
        }
        const ids = [...new Set([...beats.keys(), ...known.keys()])];
        const intervals = this.roundIntervals(now);
        const agents = ids.map((agent) => {
            const hb = beats.get(agent);
            const k = known.get(agent);
            const lastRound = hb?.last_round_t ?? k?.last_t ?? null;
            const interval = intervals.all.get(agent) ?? null;
            const silentAfter = Math.max(60, 3 * (interval ?? 60));
            const heartbeatLateAfter = Math.max(HEARTBEAT_LATE_AFTER_S, silentAfter);
            const hbAge = hb ? hb.age_s : null;
            const roundAge = lastRound === null ? null : Math.max(0, (now - lastRound) / 1000);
            const issues = [];
            let status = 'ok';
            const hbQuiet = hbAge === null || hbAge > heartbeatLateAfter;
            const roundQuiet = roundAge === null || roundAge > silentAfter;
            if (hbQuiet && roundQuiet) {
                status = 'silent';
                issues.push(`no heartbeat or round for more than ${human(silentAfter)}`);
            }
            else {
                if (hbAge === null)
                    issues.push('no heartbeat recorded');
                else if (hbQuiet)
                    issues.push(`last heartbeat ${human(hbAge)} ago`);
                if (roundAge === null)
                    issues.push('no round recorded');
                else if (roundQuiet)
                    issues.push(`last round ${human(roundAge)} ago`);
            }
            if (hb?.dead_letters)
                issues.push(`${hb.dead_letters} dead letter(s): lines InfluxDB rejected`);
            if (hb?.dropped_rows)
                issues.push(`${hb.dropped_rows} row(s) dropped by retention`);
            if (hb?.rounds_late)
                issues.push(`${hb.rounds_late} round(s) started late`);
            if (hb?.rounds_skipped)
                issues.push(`${hb.rounds_skipped} round(s) skipped or abandoned`);
            if (hb?.rounds_failed)
                issues.push(`${hb.rounds_failed} round(s) measured but not stored (store write failed)`);
            if (status === 'ok' && issues.length > 0)
                status = 'warning';
            return {
                agent,
                agent_region: hb?.agent_region ?? k?.agent_region ?? '',
                status,
                issues,
                heartbeat_t: hb?.t ?? null,
                heartbeat_age_s: hbAge,
                last_round_t: lastRound,
                last_round_age_s: roundAge,
                round_interval_s: interval,
                round_intervals: [...(intervals.byService.get(agent) ?? [])]
                    .map(([service, interval_s]) => ({ service, interval_s }))
                    .sort((a, b) => a.service.localeCompare(b.service)),
                silent_after_s: silentAfter,
                version: hb?.version ?? null,
                uptime_s: hb?.uptime_s ?? null,
                loop_lag_p99_ms: hb?.loop_lag_p99_ms ?? null,
                rounds_late: hb?.rounds_late ?? null,
                rounds_skipped: hb?.rounds_skipped ?? null,
                rounds_failed: hb?.rounds_failed ?? null,
                outbox_rows: hb?.outbox_rows ?? null,
                dead_letters: hb?.dead_letters ?? null,
                dropped_rows: hb?.dropped_rows ?? null,
            };
        });
        return { now, agents: agents.sort(byRegion) };
    }
}
function headlineOf(r) {
    const baselines = Object.fromEntries(Object.entries(r.baselines).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
    return {
        protocol: r.protocol,
        metric: r.metric,
        scope: r.scope,
        rounds: r.rounds,
        pairs: r.pairs,
        anycast_p50_ms: r.anycast_p50_ms ?? null,
        baseline_p50_ms: r.baseline_p50_ms ?? null,
        saved_ms: r.saved_ms ?? null,
        saved_pct: r.saved_pct ?? null,
        ci_low_ms: r.ci_low_ms ?? null,
        ci_high_ms: r.ci_high_ms ?? null,
        win_rate: r.win_rate ?? null,
        baselines,
    };
}
/** Loss in % of samples sent: per path the worst of its metrics, then the worst anycast path and unicast endpoint. */
function lossOf(totals) {
    const worst = new Map();
    for (const t of totals) {
        if (t.sent <= 0)
            continue;
        const pct = (100 * (t.sent - t.received)) / t.sent;
        const prev = worst.get(t.endpoint);
        if (!prev || pct > prev.pct)
            worst.set(t.endpoint, { kind: t.kind, pct });
    }
    let anycast = null;
    let unicast = null;
    let unicastEndpoint = null;
    for (const [endpoint, { kind, pct }] of [...worst].sort((a, b) => a[0].localeCompare(b[0]))) {
        if (kind === 'anycast')
            anycast = Math.max(anycast ?? 0, pct);
        else if (unicast === null || pct > unicast) {
            unicast = pct;
            unicastEndpoint = endpoint;
        }
    }
    return { anycast, unicast, unicastEndpoint: unicast ? unicastEndpoint : null };
}
