// The dashboard page: polls the JSON endpoints every few seconds and renders tables and uPlot
// charts. Plain browser JavaScript modules, no build step; every text goes in through textContent.
// This module holds the page's state (the URL's service, window and metric), the controls, the
// overview of every service and the refresh loop; charts.js, sections.js and format.js the rest.
import { PALETTE, pruneCharts, resizeCharts } from './charts.js';
import { $, ago, ci, clock, duration, el, lossCell, ms, pct, rate, replaceRows, rowKey, verdict } from './format.js';
import {
  renderBenefit,
  renderBenefitChart,
  renderEvents,
  renderHealth,
  renderLatency,
  renderLoss,
  renderSites,
} from './sections.js';

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

const state = readState();
let timer;
let inFlight = false;
let again = false;

// ------------------------------------------------------------------ state in the URL

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

// ------------------------------------------------------------------ the API

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

// ------------------------------------------------------------------ controls

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

// ------------------------------------------------------------------ overview

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

function renderOverview(overview) {
  $('overview-caption').textContent =
    `${overview.since} window · each service on its headline metric · click a row for its charts`;
  const rows = overview.services.flatMap((s) => s.regions.map((r, i) => overviewRow(s, r, i)));
  replaceRows($('overview-table').tBodies[0], rows);
  const empty = $('overview-empty');
  empty.hidden = rows.length > 0;
  empty.textContent = 'Waiting for the first round: no agent has written to the store yet.';
}

/** Service `s` in region `r`, the service's `i`th region: a click opens the service's view. */
function overviewRow(s, r, i) {
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
    el('td', { 'data-col': 'region' }, r.agent_region, r.size ? el('span', { class: 'size' }, ` · ${r.size}`) : ''),
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
    if (!chosen && known.length > 1) await showOverview(services, notYet);
    else await showService({ services, known, chosen, notYet });
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

/** The status line after a load; `notYet` says that the service asked for has no round yet. */
function updatedText(notYet) {
  return `${notYet}updated ${clock(Date.now())} · refreshes every ${refreshMs() / 1000} s`;
}

async function showOverview(services, notYet) {
  const [overview, health] = await Promise.all([
    getJson('/api/overview', { since: state.since }),
    getJson('/api/health'),
  ]);
  showView('overview');
  renderControls(services, null);
  renderOverview(overview);
  renderHealth(health);
  setStatus(updatedText(notYet), notYet ? 'warn' : 'ok');
}

/** One service's view: `chosen` (or the default service when none is), its benefit first. */
async function showService({ services, known, chosen, notYet }) {
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
  setStatus(waiting ? 'waiting for the first round…' : updatedText(notYet), waiting || notYet ? 'warn' : 'ok');
}

// ------------------------------------------------------------------ navigation

function onControl(key) {
  return (ev) => {
    state[key] = ev.target.value;
    if (key === 'service') state.metric = '';
    writeState(key === 'service');
    refresh();
  };
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
