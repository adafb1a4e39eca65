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
export function benchArgs(name, usage) {
    const { values } = parseArgs({
        options: { quick: { type: 'boolean', default: false }, out: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
        strict: true,
    });
    if (values.help) {
        process.stdout.write(`${usage}\n`);
        process.exit(0);
    }
    const quick = values.quick === true;
    return { quick, out: resolve(values.out ?? join(RESULTS_DIR, `${name}${quick ? '-quick' : ''}.json`)) };
}
/** A number with `digits` decimals, `-` when absent or not finite. */
export function fmt(x, digits = 2) {
    return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}
/** A signed number (`+0.12`, `-0.03`), for biases. */
export function signed(x, digits = 2) {
    if (x === undefined || !Number.isFinite(x))
        return '-';
    const s = x.toFixed(digits);
    return x >= 0 && !s.startsWith('-') ? `+${s}` : s;
}
/** A Markdown table; columns after the first are right-aligned. */
export function markdownTable(headers, rows) {
    const line = (cells) => `| ${cells.map((c) => (c === undefined ? '-' : String(c))).join(' | ')} |`;
    return [line(headers), `|${headers.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map(line)].join('\n');
}
export function machineNote() {
    const c = cpus();
    return { cpus: c.length, cpuModel: c[0]?.model ?? '?', node: process.version, loadavg: loadavg().map((x) => Math.round(x * 100) / 100), at: new Date().toISOString(), agent: compiledIsFresh() ? 'compiled' : 'tsx' };
}
export function describeMachine(m) {
    const agent = m.agent === 'compiled' ? 'the agent compiled (npm run build)' : 'the agent as TypeScript through tsx (no current build)';
    return `${m.cpus} CPUs (${m.cpuModel}), Node ${m.node}, ${agent}, load average ${m.loadavg.join(' / ')} (1/5/15 min) at ${m.at}`;
}
/** Writes the JSON result and says where. */
export function writeResult(out, data) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(data, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
    process.stdout.write(`\nresults: ${out}\n`);
}
/** Progress lines go to stderr so stdout holds only the tables. */
export function progress(line) {
    process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}
