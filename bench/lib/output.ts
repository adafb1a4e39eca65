// What every benchmark prints and keeps: a Markdown table (pasted into docs/benchmarks.md as is) and a JSON
// file under bench/results/ (git-ignored) with everything the table came from.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compiledIsFresh } from '../../bin/compiled.js';

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const RESULTS_DIR = join(BENCH_DIR, 'results');

/** The options every benchmark takes: `--quick` (under a minute) and `--out FILE`. */
export interface BenchArgs {
  quick: boolean;
  out: string;
}

export function benchArgs(name: string, usage: string): BenchArgs {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const quick = values.quick === true;
  return { quick, out: resolve(values.out ?? join(RESULTS_DIR, `${name}${quick ? '-quick' : ''}.json`)) };
}

export type Cell = string | number | undefined;

/** A number with `digits` decimals, `-` when absent or not finite. */
export function fmt(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

/** A signed number (`+0.12`, `-0.03`), for biases. */
export function signed(x: number | undefined, digits = 2): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  const s = x.toFixed(digits);
  return x >= 0 && !s.startsWith('-') ? `+${s}` : s;
}

/** A Markdown table; columns after the first are right-aligned. */
export function markdownTable(headers: readonly string[], rows: readonly Cell[][]): string {
  const line = (cells: readonly Cell[]) => `| ${cells.map((c) => (c === undefined ? '-' : String(c))).join(' | ')} |`;
  return [line(headers), `|${headers.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map(line)].join(
    '\n',
  );
}

/** Where and under what load a benchmark ran: printed under each table and kept in the JSON. */
export interface MachineNote {
  cpus: number;
  cpuModel: string;
  node: string;
  loadavg: number[];
  at: string;
  /** how the benchmark's agent process runs: compiled (`npm run build`) or TypeScript through tsx */
  agent: 'compiled' | 'tsx';
}

export function machineNote(): MachineNote {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? '?',
    node: process.version,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    at: new Date().toISOString(),
    agent: compiledIsFresh() ? 'compiled' : 'tsx',
  };
}

export function describeMachine(m: MachineNote): string {
  const agent =
    m.agent === 'compiled'
      ? 'the agent compiled (npm run build)'
      : 'the agent as TypeScript through tsx (no current build)';
  return `${m.cpus} CPUs (${m.cpuModel}), Node ${m.node}, ${agent}, load average ${m.loadavg.join(' / ')} (1/5/15 min) at ${m.at}`;
}

/** Writes the JSON result and says where. */
export function writeResult(out: string, data: unknown): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(data, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`,
  );
  process.stdout.write(`\nresults: ${out}\n`);
}

/** Progress lines go to stderr so stdout holds only the tables. */
export function progress(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}
