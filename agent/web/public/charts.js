// The page's uPlot charts: one per name, created once and updated in place on each refresh.
// uPlot is the global its IIFE build defines (index.html loads it before this module).
import { el } from './format.js';

/** Series colours, one per region (in the benefit table's order) or per path. */
export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
export const ANYCAST_COLOR = '#2563eb';
export const BASELINE_COLOR = '#ea580c';

/** chart name -> { plot, signature } */
const charts = new Map();

/** Joins series sampled at different times onto one x axis (seconds), null where a series has no point. */
export function align(series) {
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
export function plot(container, name, lines, data, { yLabel, height = 220, yMin, floor, zero } = {}) {
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
export function pruneCharts() {
  for (const [name, c] of charts) {
    if (!c.container.isConnected) {
      c.plot.destroy();
      charts.delete(name);
    }
  }
}

/** One child per key in `grid`, reused across refreshes so charts update in place. */
export function cells(grid, keys, title) {
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

export function noData(container, text) {
  for (const [name, c] of charts) {
    if (c.container === container) {
      c.plot.destroy();
      charts.delete(name);
    }
  }
  container.replaceChildren(el('p', { class: 'empty' }, text));
  delete container.dataset.chart;
}

export function resizeCharts() {
  for (const c of charts.values()) {
    c.plot.setSize({ width: chartWidth(c.container), height: c.plot.height });
  }
}
