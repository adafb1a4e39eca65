// The page's building blocks: elements made with textContent only, and the text of each value
// (ms, %, Mbit/s, durations, times) as the tables and charts show it.

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs, ...children) {
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

export function ms(v, signed) {
  if (v === null || v === undefined) return '–';
  const text = `${v.toFixed(Math.abs(v) < 10 ? 2 : 1)} ms`;
  return signed && v > 0 ? `+${text}` : text;
}

export function pct(v) {
  return v === null || v === undefined ? '–' : `${v.toFixed(1)}%`;
}

export function rate(v) {
  return v === null || v === undefined ? '–' : `${Math.round(v * 100)}%`;
}

export function ci(lo, hi) {
  if (lo === null || lo === undefined || hi === null || hi === undefined) return '–';
  return `[${lo.toFixed(1)}, ${hi.toFixed(1)}] ms`;
}

export function ago(t) {
  if (t === null || t === undefined) return '–';
  return duration((Date.now() - t) / 1000) + ' ago';
}

export function duration(s) {
  if (s === null || s === undefined) return '–';
  if (s < 1) return '<1 s';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function baselines(map) {
  const names = Object.keys(map || {});
  if (names.length <= 1) return names[0] || '–';
  return names.map((n) => `${n} ×${map[n]}`).join(', ');
}

export function verdict(h) {
  if (!h || h.ci_low_ms === null || h.ci_high_ms === null) return { text: '–', cls: '' };
  if (h.ci_low_ms > 0) return { text: 'anycast faster', cls: 'good' };
  if (h.ci_high_ms < 0) return { text: 'anycast slower', cls: 'bad' };
  return { text: 'no clear difference', cls: 'neutral' };
}

export function regionLabel(r) {
  const who = r.agent_region === r.agent ? r.agent_region : `${r.agent_region} (${r.agent})`;
  // A transfer row covers one object size: the label says which.
  return r.size ? `${who} · ${r.size}` : who;
}

/** The key of a region's row, chart and colour: the agent, and the transfer size when there is one. */
export function rowKey(r) {
  return r.size ? `${r.agent} ${r.size}` : r.agent;
}

/** Mbit/s (goodput is a rate, never ms). */
export function mbps(v) {
  if (v === null || v === undefined) return '–';
  return `${v.toFixed(v < 10 ? 2 : 1)} Mbit/s`;
}

export function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

export function lossCell(v) {
  if (v === null || v === undefined) return { text: '–', cls: '' };
  return { text: `${v.toFixed(v > 0 && v < 0.1 ? 2 : 1)}%`, cls: v > 0 ? 'bad' : '' };
}
