// The Prometheus text exposition format (version 0.0.4), the subset an agent needs: counters and
// gauges, each family with its # HELP and # TYPE, label values escaped. Kept free of any anylat
// type so the format can be tested on its own and reused by anything else that exposes metrics.

/** The Content-Type Prometheus expects for this format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge';

export interface MetricSample {
  labels?: Record<string, string>;
  value: number;
}

/** One metric family: a name, what it means, its type and its samples (one per label set). */
export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: MetricSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/**
 * Renders `families` in the text format. Throws on a name the format does not allow (a bug, not
 * data): metric and label names are fixed in code, only label values come from config.
 */
export function renderExposition(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`metrics: "${f.name}" is not a Prometheus metric name`);
    if (seen.has(f.name)) throw new Error(`metrics: "${f.name}" is declared twice`);
    seen.add(f.name);
    if (f.type === 'counter' && !f.name.endsWith('_total'))
      throw new Error(`metrics: counter "${f.name}" must end in _total`);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      for (const [k] of labels)
        if (!LABEL_NAME.test(k) || k.startsWith('__'))
          throw new Error(`metrics: "${k}" is not a Prometheus label name`);
      const set = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
      out.push(`${f.name}${set} ${formatValue(s.value)}`);
    }
  }
  return `${out.join('\n')}\n`;
}
