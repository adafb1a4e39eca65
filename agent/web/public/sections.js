// The parts of a service's view (benefit table and chart, latency and loss charts, sites, events)
// and the agents' health table, each drawn from its API answer.
import { ANYCAST_COLOR, BASELINE_COLOR, PALETTE, align, cells, noData, plot } from './charts.js';
import {
  $,
  ago,
  baselines,
  ci,
  clock,
  duration,
  el,
  mbps,
  ms,
  pct,
  rate,
  regionLabel,
  replaceRows,
  rowKey,
  verdict,
} from './format.js';

export function renderBenefit(benefit, colors) {
  const scope = benefit.scope === 'edge' ? ' · edge scope: overstates the benefit' : '';
  $('benefit-caption').textContent = benefit.metric ? `${benefit.metric}, ${benefit.since} window${scope}` : '';
  const rows = benefit.regions.map((r) => benefitRow(r, colors));
  // The goodput column (Mbit/s) shows only for transfer, whose rows carry it.
  $('benefit-table').dataset.goodput = String(benefit.regions.some((r) => r.goodput));
  replaceRows($('benefit-table').tBodies[0], rows);
  const empty = $('benefit-empty');
  empty.hidden = rows.length > 0;
  empty.textContent = benefit.service
    ? 'No rounds of this service in the window.'
    : 'Waiting for the first round: no agent has written to the store yet.';
  renderMetricRows(benefit);
}

/** A region's headline row, its swatch in the region's chart colour. */
function benefitRow(r, colors) {
  const h = r.headline;
  const v = verdict(h);
  const latest = r.latest ? [ms(r.latest.saved_ms, true), el('small', {}, ago(r.latest.t))] : ['–'];
  const color = colors.get(rowKey(r));
  const swatch = el('span', { class: 'swatch', 'data-color': color });
  swatch.style.background = color;
  const g = r.goodput;
  return el(
    'tr',
    { 'data-agent': r.agent, 'data-region': r.agent_region, 'data-size': r.size || undefined },
    el(
      'td',
      { 'data-col': 'region' },
      swatch,
      r.agent_region,
      r.size ? el('span', { class: 'size' }, ` · ${r.size}`) : '',
    ),
    el('td', { 'data-col': 'agent' }, r.agent),
    el('td', { class: `num strong ${v.cls}`, 'data-col': 'saved' }, h ? ms(h.saved_ms, true) : r.note || 'no rounds'),
    el('td', { class: 'num', 'data-col': 'ci' }, h ? ci(h.ci_low_ms, h.ci_high_ms) : '–'),
    el('td', { class: 'num', 'data-col': 'saved_pct' }, h ? pct(h.saved_pct) : '–'),
    el('td', { class: 'num', 'data-col': 'win_rate' }, h ? rate(h.win_rate) : '–'),
    el('td', { 'data-col': 'verdict' }, el('span', { class: `badge ${v.cls}` }, v.text)),
    el('td', { class: 'num', 'data-col': 'anycast_p50' }, h ? ms(h.anycast_p50_ms) : '–'),
    el('td', { class: 'num', 'data-col': 'baseline_p50' }, h ? ms(h.baseline_p50_ms) : '–'),
    el('td', { 'data-col': 'baseline' }, h ? baselines(h.baselines) : '–'),
    el('td', { 'data-col': 'site' }, r.site || '–'),
    el('td', { class: 'num', 'data-col': 'rounds' }, h ? String(h.rounds) : '0'),
    el('td', { class: 'num stack', 'data-col': 'latest' }, ...latest),
    el(
      'td',
      { class: 'num', 'data-col': 'goodput', title: g && g.baseline ? `baseline: ${g.baseline}` : undefined },
      g ? `${mbps(g.anycast_mbps)} / ${mbps(g.baseline_mbps)}` : '–',
    ),
  );
}

/** Every protocol/metric of every region, the headline's and the others. */
function renderMetricRows(benefit) {
  const all = benefit.regions.flatMap((r) =>
    r.rows.map((row) =>
      el(
        'tr',
        { class: row.scope === 'edge' ? 'edge' : '' },
        el('td', {}, r.agent_region),
        el('td', {}, r.agent),
        el('td', {}, `${row.protocol}/${row.metric}${row.size ? ` ${row.size}` : ''}`),
        el('td', {}, row.scope === 'edge' ? 'edge' : 'end to end'),
        el('td', { class: 'num' }, String(row.rounds)),
        el('td', { class: 'num' }, ms(row.anycast_p50_ms)),
        el('td', { class: 'num' }, ms(row.baseline_p50_ms)),
        el('td', {}, baselines(row.baselines)),
        el('td', { class: 'num' }, ms(row.saved_ms, true)),
        el('td', { class: 'num' }, ci(row.ci_low_ms, row.ci_high_ms)),
        el('td', { class: 'num' }, pct(row.saved_pct)),
        el('td', { class: 'num' }, rate(row.win_rate)),
      ),
    ),
  );
  replaceRows($('rows-table').tBodies[0], all);
}

export function renderBenefitChart(latency, colors) {
  const box = $('benefit-chart');
  const regions = latency.regions.filter((r) => r.t.length > 0);
  if (regions.length === 0) return noData(box, 'No rounds in this window.');
  const lines = regions.map((r) => ({ label: regionLabel(r), color: colors.get(rowKey(r)) }));
  plot(box, 'benefit', lines, align(regions.map((r) => ({ t: r.t, v: r.saved_ms }))), {
    yLabel: 'saved ms',
    height: 240,
    zero: true,
  });
}

export function renderLatency(latency) {
  const regions = latency.regions;
  // A transfer metric: one chart per region and size, never two sizes on one chart.
  const boxes = cells(
    $('latency-charts'),
    regions.map((r) => rowKey(r)),
    (i) => regionLabel(regions[i]),
  );
  regions.forEach((r, i) => {
    if (r.t.length === 0) return noData(boxes[i], 'No rounds in this window.');
    const lines = [
      { label: 'anycast p50', color: ANYCAST_COLOR },
      { label: 'baseline p50', color: BASELINE_COLOR },
    ];
    plot(
      boxes[i],
      `latency:${rowKey(r)}`,
      lines,
      align([
        { t: r.t, v: r.anycast_p50_ms },
        { t: r.t, v: r.baseline_p50_ms },
      ]),
      { yLabel: 'ms', yMin: 0 },
    );
  });
  if (regions.length === 0)
    $('latency-charts').replaceChildren(el('p', { class: 'empty' }, 'No rounds in this window.'));
}

export function renderLoss(loss) {
  const regions = loss.regions;
  const boxes = cells(
    $('loss-charts'),
    regions.map((r) => r.agent),
    (i) => regionLabel(regions[i]),
  );
  regions.forEach((r, i) => {
    if (r.paths.length === 0) return noData(boxes[i], 'No rounds in this window.');
    const lines = r.paths.map((p, j) => ({
      label: `${p.endpoint} ${p.protocol}`,
      color: PALETTE[j % PALETTE.length],
    }));
    plot(boxes[i], `loss:${r.agent}`, lines, align(r.paths.map((p) => ({ t: p.t, v: p.loss_pct }))), {
      yLabel: 'loss %',
      floor: true,
      height: 180,
    });
  });
  if (regions.length === 0) $('loss-charts').replaceChildren(el('p', { class: 'empty' }, 'No rounds in this window.'));
}

function siteColor(site, siteColors) {
  if (site === null) return '#9ca3af';
  if (!siteColors.has(site)) siteColors.set(site, PALETTE[(siteColors.size + 3) % PALETTE.length]);
  return siteColors.get(site);
}

export function renderSites(sites) {
  const siteColors = new Map();
  const span = Math.max(1, sites.to_t - sites.from_t);
  const rows = sites.regions.map((r) => {
    const bar = el('div', { class: 'site-bar' });
    for (const s of r.segments) {
      // Each run lasts until the next one starts (or until now for the last).
      const next = r.segments[r.segments.indexOf(s) + 1];
      const end = next ? next.from_t : sites.to_t;
      const seg = el(
        'div',
        {
          class: 'site-seg',
          title: `${s.site || 'no site reported'}: ${clock(s.from_t)}–${clock(s.to_t)}, ${s.rounds} round(s)`,
        },
        s.site || '–',
      );
      seg.style.left = `${(100 * (s.from_t - sites.from_t)) / span}%`;
      seg.style.width = `${Math.max(0.5, (100 * (end - s.from_t)) / span)}%`;
      seg.style.background = siteColor(s.site, siteColors);
      bar.append(seg);
    }
    return el(
      'div',
      { class: 'site-row', 'data-agent': r.agent },
      el('div', { class: 'site-label' }, regionLabel(r)),
      bar,
      el('div', { class: 'site-now' }, r.current ? `now: ${r.current}` : 'no site'),
    );
  });
  const axis = el(
    'div',
    { class: 'site-row axis' },
    el('div'),
    el('div', { class: 'site-axis' }, el('span', {}, clock(sites.from_t)), el('span', {}, clock(sites.to_t))),
    el('div'),
  );
  $('sites').replaceChildren(
    ...rows,
    ...(rows.length > 0 ? [axis] : [el('p', { class: 'empty' }, 'No rounds in this window.')]),
  );
}

/** Path context: one line per trace, its hops as "address rtt" joined by ›, * for a silent hop. */
function traceLines(traces) {
  return (traces || []).map((t) =>
    el(
      'div',
      { class: 'trace' },
      `trace ${t.endpoint}: `,
      t.hops
        .map((h) =>
          h.address ? `${h.name || h.address}${h.rtt_ms !== undefined ? ` ${h.rtt_ms.toFixed(1)} ms` : ''}` : '*',
        )
        .join(' › ') || 'no hops',
      t.reached ? '' : ' (not reached)',
    ),
  );
}

export function renderEvents(events) {
  const regionOf = new Map();
  const all = [
    ...events.events,
    ...(events.shifts || []).map((s) => ({ ...s, type: 'benefit_shift', message: s.reason })),
  ].sort((a, b) => b.t - a.t);
  const rows = all.map((e) => {
    regionOf.set(e.agent, e.agent_region);
    const change = e.from || e.to ? `${e.from || '–'} → ${e.to || '–'}` : '';
    return el(
      'tr',
      { class: `event ${e.type}` },
      el('td', { class: 'num' }, `${new Date(e.t).toLocaleDateString()} ${clock(e.t)}`),
      el('td', {}, e.agent_region),
      el('td', {}, e.agent),
      el(
        'td',
        {},
        el(
          'span',
          { class: `badge ${e.type === 'path_down' ? 'bad' : e.type === 'path_up' ? 'good' : 'info'}` },
          e.type.replace('_', ' '),
        ),
      ),
      el('td', {}, change),
      el('td', {}, e.message, ...traceLines(e.traces)),
    );
  });
  replaceRows($('events-table').tBodies[0], rows);
  $('events-empty').hidden = rows.length > 0;
}

/** "5 s, each of 20 services", "5 s: api, web · 60 s: dns": each service's own round interval, shortest first. */
function intervalsText(list) {
  if (!list || list.length === 0) return '–';
  const groups = new Map();
  const sorted = [...list].sort((a, b) => (a.interval_s ?? Infinity) - (b.interval_s ?? Infinity));
  for (const x of sorted) {
    const d = x.interval_s === null ? 'one round' : duration(x.interval_s);
    if (!groups.has(d)) groups.set(d, []);
    groups.get(d).push(x.service);
  }
  if (groups.size === 1) {
    const [[d, names]] = [...groups];
    return names.length === 1 ? `${d} (${names[0]})` : `${d}, each of ${names.length} services`;
  }
  return [...groups]
    .map(([d, names]) => `${d}: ${names.length > 3 ? `${names.length} services` : names.join(', ')}`)
    .join(' · ');
}

export function renderHealth(health) {
  const rows = health.agents.map((a) =>
    el(
      'tr',
      { 'data-agent': a.agent, class: `health ${a.status}` },
      el(
        'td',
        {},
        el('span', { class: `badge ${a.status === 'ok' ? 'good' : a.status === 'silent' ? 'bad' : 'warn'}` }, a.status),
      ),
      el('td', {}, a.agent),
      el('td', {}, a.agent_region),
      el('td', {}, a.version || '–'),
      el('td', { class: 'num' }, ago(a.heartbeat_t)),
      el('td', { class: 'num' }, ago(a.last_round_t)),
      el(
        'td',
        {
          'data-col': 'intervals',
          title:
            (a.round_intervals || [])
              .map((x) => `${x.service}: every ${x.interval_s === null ? '?' : duration(x.interval_s)}`)
              .join('\n') || undefined,
        },
        intervalsText(a.round_intervals),
      ),
      el('td', { class: 'num' }, duration(a.uptime_s)),
      el('td', { class: 'num' }, ms(a.loop_lag_p99_ms)),
      el('td', { class: 'num' }, a.rounds_late === null ? '–' : String(a.rounds_late)),
      el(
        'td',
        { class: `num${a.rounds_failed ? ' bad' : ''}` },
        a.rounds_failed === null || a.rounds_failed === undefined ? '–' : String(a.rounds_failed),
      ),
      el('td', { class: 'num' }, a.outbox_rows === null ? '–' : String(a.outbox_rows)),
      el('td', { class: 'num' }, a.dead_letters === null ? '–' : String(a.dead_letters)),
      el('td', { class: 'notes' }, a.issues.join('; ')),
    ),
  );
  replaceRows($('health-table').tBodies[0], rows);
  $('health-empty').hidden = rows.length > 0;
}
