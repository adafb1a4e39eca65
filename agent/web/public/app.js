// The dashboard page: polls the JSON endpoints every few seconds and renders tables and uPlot
// charts. Plain browser JavaScript, no build step; every text goes in through textContent.
'use strict';

(() => {
  /**
   * Refresh period by window: a day-long chart need not reload every 5 s (each reload queries the
   * store). The overview reads every service's window at once: at least 15 s.
   */
  function refreshMs() {
    const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(state.since);
    const seconds = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]] : 3600;
    const ms = seconds <= 3600 ? 5000 : seconds <= 6 * 3600 ? 15000 : 30000;
    return document.body.dataset.view === 'overview' ? Math.max(ms, 15000) : ms;
  }
  /** Series colours, one per region (in the benefit table's order) or per path. */
  const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
  const ANYCAST_COLOR = '#2563eb';
  const BASELINE_COLOR = '#ea580c';

  const $ = (id) => document.getElementById(id);
  const state = readState();
  /** chart name -> { plot, signature } */
  const charts = new Map();
  let timer;
  let inFlight = false;
  let again = false;

  // ------------------------------------------------------------------ helpers

  function readState() {
    const q = new URLSearchParams(location.search);
    return { service: q.get('service') || '', since: q.get('since') || '1h', metric: q.get('metric') || '' };
  }

  function stateUrl(s) {
    const q = new URLSearchParams();
    if (s.service) q.set('service', s.service);
    if (s.since !== '1h') q.set('since', s.since);
    if (s.metric) q.set('metric', s.metric);
    const search = q.toString();
    return search ? `?${search}` : location.pathname;
  }

  /** `push`: a new history entry (another view), so the browser's Back returns to the one before. */
  function writeState(push) {
    if (push) history.pushState(null, '', stateUrl(state));
    else history.replaceState(null, '', stateUrl(state));
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'title') node.title = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function ms(v, signed) {
    if (v === null || v === undefined) return '–';
    const text = `${v.toFixed(Math.abs(v) < 10 ? 2 : 1)} ms`;
    return signed && v > 0 ? `+${text}` : text;
  }

  function pct(v) {
    return v === null || v === undefined ? '–' : `${v.toFixed(1)}%`;
  }

  function rate(v) {
    return v === null || v === undefined ? '–' : `${Math.round(v * 100)}%`;
  }

  function ci(lo, hi) {
    if (lo === null || lo === undefined || hi === null || hi === undefined) return '–';
    return `[${lo.toFixed(1)}, ${hi.toFixed(1)}] ms`;
  }

  function ago(t) {
    if (t === null || t === undefined) return '–';
    return duration((Date.now() - t) / 1000) + ' ago';
  }

  function duration(s) {
    if (s === null || s === undefined) return '–';
    if (s < 1) return '<1 s';
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
    return `${(s / 86400).toFixed(1)} d`;
  }

  function clock(t) {
    return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function baselines(map) {
    const names = Object.keys(map || {});
    if (names.length <= 1) return names[0] || '–';
    return names.map((n) => `${n} ×${map[n]}`).join(', ');
  }

  function verdict(h) {
    if (!h || h.ci_low_ms === null || h.ci_high_ms === null) return { text: '–', cls: '' };
    if (h.ci_low_ms > 0) return { text: 'anycast faster', cls: 'good' };
    if (h.ci_high_ms < 0) return { text: 'anycast slower', cls: 'bad' };
    return { text: 'no clear difference', cls: 'neutral' };
  }

  function regionLabel(r) {
    const who = r.agent_region === r.agent ? r.agent_region : `${r.agent_region} (${r.agent})`;
    // A transfer row covers one object size: the label says which.
    return r.size ? `${who} · ${r.size}` : who;
  }

  /** The key of a region's row, chart and colour: the agent, and the transfer size when there is one. */
  function rowKey(r) {
    return r.size ? `${r.agent} ${r.size}` : r.agent;
  }

  /** Mbit/s (goodput is a rate, never ms). */
  function mbps(v) {
    if (v === null || v === undefined) return '–';
    return `${v.toFixed(v < 10 ? 2 : 1)} Mbit/s`;
  }

  function replaceRows(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  async function getJson(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v) q.set(k, v);
    const res = await fetch(q.toString() ? `${path}?${q}` : path, { cache: 'no-store' });
    const body = await res.json();
    if (!res.ok) {
      const err = new Error(body && body.error ? body.error.message : `${path}: HTTP ${res.status}`);
      err.param = body && body.error ? body.error.param : undefined;
      throw err;
    }
    return body;
  }

  // ------------------------------------------------------------------ charts

  /** Joins series sampled at different times onto one x axis (seconds), null where a series has no point. */
  function align(series) {
    const xs = [...new Set(series.flatMap((s) => s.t))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const ys = series.map((s) => {
      const out = new Array(xs.length).fill(null);
      s.t.forEach((t, i) => (out[index.get(t)] = s.v[i]));
      return out;
    });
    return [xs.map((x) => x / 1000), ...ys];
  }

  function chartWidth(container) {
    return Math.max(240, Math.floor(container.clientWidth || 600));
  }

  /**
   * Creates or updates the uPlot chart `name` inside `container`. `lines` is [{ label, color }];
   * the container carries data-chart and data-series-colors so tests can check what was drawn.
   */
  function plot(container, name, lines, data, { yLabel, height = 220, yMin, floor, zero } = {}) {
    const signature = JSON.stringify(lines);
    const existing = charts.get(name);
    if (existing && existing.signature === signature && existing.container === container && container.isConnected) {
      existing.plot.setData(data);
      return;
    }
    if (existing) existing.plot.destroy();
    container.replaceChildren();
    container.dataset.chart = name;
    container.dataset.seriesColors = JSON.stringify(lines.map((l) => l.color));
    const opts = {
      width: chartWidth(container),
      height,
      scales: {
        x: { time: true },
        y: {
          range: (u, min, max) => yRange(zero ? Math.min(min, 0) : min, zero ? Math.max(max, 0) : max, yMin, floor),
        },
      },
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 2,
          spanGaps: true,
          value: (u, v) => (v === null ? '–' : v.toFixed(2)),
        })),
      ],
      axes: [
        { space: 70, incrs: TIME_INCRS, values: timeTicks },
        { label: yLabel, size: 56, values: floor ? (u, ticks) => ticks.map((t) => (t < 0 ? '' : t)) : undefined },
      ],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      // Not hovered, uPlot's legend would read "Time: --" and "–": show each series' latest value instead.
      hooks: { setLegend: [(u) => u.legend.idx == null && showLatest(u)] },
    };
    const plotObj = new uPlot(opts, data, container);
    charts.set(name, { plot: plotObj, signature, container });
  }

  /** Points the legend at the newest x and, per series, its newest non-null value. */
  function showLatest(u) {
    const n = u.data[0].length;
    if (n === 0) return;
    const idxs = u.data.map((ys, i) => {
      if (i === 0) return n - 1;
      for (let j = n - 1; j >= 0; j--) if (ys[j] !== null && ys[j] !== undefined) return j;
      return null;
    });
    u.setLegend({ idxs }, false);
  }

  /** Tick steps in seconds: whole seconds, minutes, hours and days, so labels stay short. */
  const TIME_INCRS = [
    1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
  ];

  /** One-line time labels: seconds only when ticks are less than a minute apart, dates for days. */
  function timeTicks(u, ticks, axisIdx, space, incr) {
    return ticks.map((t) => {
      const d = new Date(t * 1000);
      if (incr >= 86400) return d.toLocaleDateString([], { month: 'short', day: 'numeric' });
      const opts =
        incr < 60 ? { hour: '2-digit', minute: '2-digit', second: '2-digit' } : { hour: '2-digit', minute: '2-digit' };
      return d.toLocaleTimeString([], opts);
    });
  }

  /**
   * The y range: around the data, from `yMin` up when given. A `floor` chart (loss: mostly 0) keeps
   * a little room below its floor so a line at 0 is not hidden under the plot's edge.
   */
  function yRange(min, max, yMin, floor) {
    if (min === null || max === null) return [0, 1];
    if (floor) {
      const top = Math.max(max, 1) * 1.1;
      return [-top * 0.05, top];
    }
    if (yMin !== undefined) return [Math.min(yMin, min), Math.max(max, yMin + 1) * 1.1];
    const pad = Math.max((max - min) * 0.1, 0.5);
    return [min - pad, max + pad];
  }

  /** Forgets charts whose container left the page. */
  function pruneCharts() {
    for (const [name, c] of charts) {
      if (!c.container.isConnected) {
        c.plot.destroy();
        charts.delete(name);
      }
    }
  }

  /** One child per key in `grid`, reused across refreshes so charts update in place. */
  function cells(grid, keys, title) {
    const byKey = new Map([...grid.children].map((c) => [c.dataset.key, c]));
    const out = keys.map((k, i) => {
      let cell = byKey.get(k);
      if (!cell) {
        cell = el('figure', { class: 'cell', 'data-key': k }, el('figcaption'), el('div', { class: 'chart' }));
      }
      cell.querySelector('figcaption').textContent = title(i);
      return cell;
    });
    grid.replaceChildren(...out);
    return out.map((c) => c.querySelector('.chart'));
  }

  function noData(container, text) {
    for (const [name, c] of charts) {
      if (c.container === container) {
        c.plot.destroy();
        charts.delete(name);
      }
    }
    container.replaceChildren(el('p', { class: 'empty' }, text));
    delete container.dataset.chart;
  }

  // ------------------------------------------------------------------ sections

  function renderControls(services, benefit) {
    const svc = $('service');
    const names = services.services.map((s) => s.service);
    const all = names.length > 1 ? [el('option', { value: '' }, `All services (${names.length})`)] : [];
    svc.replaceChildren(...all, ...names.map((n) => el('option', { value: n }, n)));
    svc.value = benefit ? benefit.service || '' : '';
    svc.disabled = names.length === 0;

    const met = $('metric');
    if (!benefit) {
      met.replaceChildren(el('option', { value: '' }, 'each service: its headline'));
      met.disabled = true;
      syncSince();
      return;
    }
    met.disabled = false;

    const auto = !state.metric && benefit.metric ? `auto: ${benefit.metric}` : 'auto: first end-to-end';
    const opts = [el('option', { value: '' }, auto)];
    for (const m of benefit.metrics)
      opts.push(el('option', { value: m.key }, `${m.key} (${m.scope === 'end_to_end' ? 'end to end' : 'edge'})`));
    if (state.metric && !benefit.metrics.some((m) => m.key === state.metric))
      opts.push(el('option', { value: state.metric }, `${state.metric} (no data)`));
    met.replaceChildren(...opts);
    met.value = state.metric;
    syncSince();
  }

  function syncSince() {
    const since = $('since');
    if (![...since.options].some((o) => o.value === state.since))
      since.append(el('option', { value: state.since }, `last ${state.since}`));
    since.value = state.since;
  }

  function renderBenefit(benefit, colors) {
    const scope = benefit.scope === 'edge' ? ' · edge scope: overstates the benefit' : '';
    $('benefit-caption').textContent = benefit.metric ? `${benefit.metric}, ${benefit.since} window${scope}` : '';
    const rows = benefit.regions.map((r) => {
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
        el(
          'td',
          { class: `num strong ${v.cls}`, 'data-col': 'saved' },
          h ? ms(h.saved_ms, true) : r.note || 'no rounds',
        ),
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
    });
    // The goodput column (Mbit/s) shows only for transfer, whose rows carry it.
    $('benefit-table').dataset.goodput = String(benefit.regions.some((r) => r.goodput));
    replaceRows($('benefit-table').tBodies[0], rows);
    const empty = $('benefit-empty');
    empty.hidden = rows.length > 0;
    empty.textContent = benefit.service
      ? 'No rounds of this service in the window.'
      : 'Waiting for the first round: no agent has written to the store yet.';

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

  function renderBenefitChart(latency, colors) {
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

  function renderLatency(latency) {
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

  function renderLoss(loss) {
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
    if (regions.length === 0)
      $('loss-charts').replaceChildren(el('p', { class: 'empty' }, 'No rounds in this window.'));
  }

  function siteColor(site, siteColors) {
    if (site === null) return '#9ca3af';
    if (!siteColors.has(site)) siteColors.set(site, PALETTE[(siteColors.size + 3) % PALETTE.length]);
    return siteColors.get(site);
  }

  function renderSites(sites) {
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

  function renderEvents(events) {
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

  /** A link to a service's own view, keeping the window. */
  function serviceHref(service) {
    return stateUrl({ service, since: state.since, metric: '' });
  }

  function openService(service) {
    state.service = service;
    state.metric = '';
    writeState(true);
    window.scrollTo(0, 0);
    refresh();
  }

  function lossCell(v) {
    if (v === null || v === undefined) return { text: '–', cls: '' };
    return { text: `${v.toFixed(v > 0 && v < 0.1 ? 2 : 1)}%`, cls: v > 0 ? 'bad' : '' };
  }

  function renderOverview(overview) {
    $('overview-caption').textContent =
      `${overview.since} window · each service on its headline metric · click a row for its charts`;
    const rows = overview.services.flatMap((s) =>
      s.regions.map((r, i) => {
        const h = r.headline;
        const v = verdict(h);
        const any = lossCell(r.anycast_loss_pct);
        const uni = lossCell(r.unicast_loss_pct);
        const scope = s.scope === 'edge' ? ' (edge)' : '';
        const tr = el(
          'tr',
          {
            class: `clickable${i === 0 ? ' svc-first' : ''}`,
            'data-service': s.service,
            'data-agent': r.agent,
            'data-region': r.agent_region,
            'data-size': r.size || undefined,
            title: `${s.service} in ${r.agent_region}: open its charts`,
          },
          el('td', { 'data-col': 'service' }, el('a', { href: serviceHref(s.service) }, s.service)),
          el(
            'td',
            { 'data-col': 'region' },
            r.agent_region,
            r.size ? el('span', { class: 'size' }, ` · ${r.size}`) : '',
          ),
          el('td', { 'data-col': 'agent' }, r.agent),
          el('td', { 'data-col': 'metric' }, s.metric ? `${s.metric}${scope}` : '–'),
          el(
            'td',
            { class: `num strong ${v.cls}`, 'data-col': 'saved' },
            h ? ms(h.saved_ms, true) : r.note || 'no rounds in window',
          ),
          el('td', { class: 'num', 'data-col': 'ci' }, h ? ci(h.ci_low_ms, h.ci_high_ms) : '–'),
          el('td', { 'data-col': 'verdict' }, el('span', { class: `badge ${v.cls}` }, v.text)),
          el('td', { class: 'num', 'data-col': 'saved_pct' }, h ? pct(h.saved_pct) : '–'),
          el('td', { class: 'num', 'data-col': 'win_rate' }, h ? rate(h.win_rate) : '–'),
          el('td', { class: `num ${any.cls}`, 'data-col': 'anycast_loss' }, any.text),
          el(
            'td',
            {
              class: `num ${uni.cls}`,
              'data-col': 'unicast_loss',
              title: r.unicast_loss_endpoint ? `worst unicast endpoint: ${r.unicast_loss_endpoint}` : undefined,
            },
            uni.text,
          ),
          el('td', { class: 'num', 'data-col': 'rounds' }, h ? String(h.rounds) : '0'),
          el('td', { class: 'num', 'data-col': 'interval' }, r.interval_s === null ? '–' : duration(r.interval_s)),
          el('td', { class: 'num', 'data-col': 'last_round' }, ago(r.last_round_t)),
        );
        tr.addEventListener('click', (ev) => {
          // A plain click on the link or the row opens the view here; a modified click on the link keeps the browser's meaning.
          if (ev.target.closest('a') && (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0)) return;
          ev.preventDefault();
          openService(s.service);
        });
        return tr;
      }),
    );
    replaceRows($('overview-table').tBodies[0], rows);
    const empty = $('overview-empty');
    empty.hidden = rows.length > 0;
    empty.textContent = 'Waiting for the first round: no agent has written to the store yet.';
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

  function renderHealth(health) {
    const rows = health.agents.map((a) =>
      el(
        'tr',
        { 'data-agent': a.agent, class: `health ${a.status}` },
        el(
          'td',
          {},
          el(
            'span',
            { class: `badge ${a.status === 'ok' ? 'good' : a.status === 'silent' ? 'bad' : 'warn'}` },
            a.status,
          ),
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

  // ------------------------------------------------------------------ refresh loop

  function showView(view) {
    $('overview-section').hidden = view !== 'overview';
    $('service-view').hidden = view !== 'service';
    document.body.dataset.view = view;
  }

  function setStatus(text, cls) {
    const s = $('status');
    s.textContent = text;
    s.className = `status ${cls || ''}`;
  }

  async function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    again = false;
    clearTimeout(timer);
    try {
      const services = await getJson('/api/services');
      const known = services.services.map((s) => s.service);
      // A service asked for that has no round yet (a demo's page opened before its first round, a
      // bookmark of a retired service) is kept, not forgotten: its view opens once it has a round;
      // until then the page shows what there is and says so.
      const chosen = state.service && known.includes(state.service) ? state.service : '';
      const notYet = state.service && !chosen ? `no rounds of ${state.service} yet · ` : '';
      // More than one service and none chosen: every service × region on one screen.
      if (!chosen && known.length > 1) {
        const [overview, health] = await Promise.all([
          getJson('/api/overview', { since: state.since }),
          getJson('/api/health'),
        ]);
        showView('overview');
        renderControls(services, null);
        renderOverview(overview);
        renderHealth(health);
        setStatus(
          `${notYet}updated ${clock(Date.now())} · refreshes every ${refreshMs() / 1000} s`,
          notYet ? 'warn' : 'ok',
        );
        document.body.dataset.loaded = 'true';
        return;
      }
      const params = { service: chosen || services.default_service || '', since: state.since };
      const benefit = await getJson('/api/benefit', { ...params, metric: state.metric });
      // The metric benefit chose (the default when none was picked), so the others need not choose again.
      const withMetric = { ...params, metric: benefit.metric || state.metric };
      const [latency, loss, sites, events, health] = await Promise.all([
        getJson('/api/latency', withMetric),
        getJson('/api/loss', params),
        getJson('/api/sites', withMetric),
        getJson('/api/events', params),
        getJson('/api/health'),
      ]);
      // One colour per agent, in the benefit table's order, shared by every chart.
      const colors = new Map(benefit.regions.map((r, i) => [rowKey(r), PALETTE[i % PALETTE.length]]));
      // Shown before drawing: a chart sizes itself to its container's width.
      showView('service');
      renderControls(services, benefit);
      renderBenefit(benefit, colors);
      renderBenefitChart(latency, colors);
      renderLatency(latency);
      renderLoss(loss);
      renderSites(sites);
      renderEvents(events);
      renderHealth(health);
      pruneCharts();
      const waiting = !services.store_ready || known.length === 0;
      setStatus(
        waiting
          ? 'waiting for the first round…'
          : `${notYet}updated ${clock(Date.now())} · refreshes every ${refreshMs() / 1000} s`,
        waiting || notYet ? 'warn' : 'ok',
      );
      document.body.dataset.loaded = 'true';
    } catch (err) {
      if (err.param === 'metric' && state.metric) {
        state.metric = '';
        writeState();
      }
      setStatus(`cannot load data: ${err.message} — retrying`, 'bad');
    } finally {
      inFlight = false;
      timer = setTimeout(refresh, again ? 0 : refreshMs());
    }
  }

  function onControl(key) {
    return (ev) => {
      state[key] = ev.target.value;
      if (key === 'service') state.metric = '';
      writeState(key === 'service');
      refresh();
    };
  }

  function resizeCharts() {
    for (const c of charts.values()) {
      c.plot.setSize({ width: chartWidth(c.container), height: c.plot.height });
    }
  }

  function start() {
    $('service').addEventListener('change', onControl('service'));
    $('metric').addEventListener('change', onControl('metric'));
    $('since').addEventListener('change', onControl('since'));
    $('controls').addEventListener('submit', (ev) => ev.preventDefault());
    window.addEventListener('popstate', () => {
      Object.assign(state, readState());
      refresh();
    });
    let resizeTimer;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(resizeCharts, 150);
    });
    refresh();
  }

  if (typeof uPlot === 'undefined') {
    setStatus('uPlot did not load: charts are unavailable', 'bad');
  } else {
    start();
  }
})();
