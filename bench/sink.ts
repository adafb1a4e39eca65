// npm run bench:sink [-- --quick]
//
// How fast does the outbox drain into an InfluxDB-compatible server? The agent's own parts: rounds
// saved by the embedded store (each with its InfluxDB lines in the outbox, one transaction per
// round, as `anylat run` saves them), then the sink sending them to VictoriaMetrics (Debian's
// victoria-metrics, which takes InfluxDB's /api/v2/write) until the outbox is empty. The backlog
// is what an agent holds after an outage: one hour of 100 services (one round a minute each).
// VictoriaMetrics' own row counter checks that every field arrived.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenefitRow, Metric, PathResult, Protocol, RoundResult } from '../agent/core/model.ts';
import { Sink } from '../agent/sink/sink.ts';
import { roundToLines } from '../agent/core/line-protocol.ts';
import { openStore, type Store } from '../agent/store/index.ts';
import { Victoria } from './lib/victoria.ts';
import { benchArgs, describeMachine, fmt, machineNote, markdownTable, progress, writeResult } from './lib/output.ts';

const USAGE = `usage: npm run bench:sink [-- --quick] [-- --out FILE]
  Starts VictoriaMetrics (/usr/bin/victoria-metrics) on a free loopback port; needs no root.
  --quick   a 10-minute backlog and one batch size, under a minute`;

const AGENT = { id: 'bench-sink', region: 'bench' };
const SERVICES = 100;
const PROBED: Array<[Protocol, Metric]> = [
  ['udp', 'rtt'],
  ['tcp', 'connect'],
  ['tcp', 'rtt'],
  ['http', 'connect'],
  ['http', 'ttfb'],
  ['http', 'total'],
  ['http', 'warm'],
  ['icmp', 'rtt'],
];
const ENDPOINTS = [
  { endpoint: 'anycast', kind: 'anycast' as const, address: '198.18.0.10', base: 40 },
  { endpoint: 'us-east-1', kind: 'unicast' as const, address: '10.0.0.1', base: 90 },
  { endpoint: 'eu-west-1', kind: 'unicast' as const, address: '10.0.0.2', base: 60 },
];

/** A round as a service with anycast + 2 unicast endpoints and udp, tcp, http, icmp writes it. */
function syntheticRound(service: string, startedAt: number, seed: number): RoundResult {
  const jitter = (i: number) => ((seed * 7919 + i * 104_729) % 1000) / 1000;
  const paths: PathResult[] = [];
  for (const [protocol, metric] of PROBED) {
    for (const [i, e] of ENDPOINTS.entries()) {
      const p50 = e.base + jitter(i) * 3;
      paths.push({
        endpoint: e.endpoint,
        kind: e.kind,
        address: e.address,
        protocol,
        metric,
        scope: protocol === 'icmp' || (e.kind === 'anycast' && metric === 'connect') ? 'edge' : 'end_to_end',
        site: e.kind === 'anycast' ? 'edge-fra' : e.endpoint,
        sent: 20,
        received: 20,
        loss_pct: 0,
        min_ms: p50 - 1,
        p50_ms: p50,
        p90_ms: p50 + 1.5,
        p99_ms: p50 + 3,
        max_ms: p50 + 4,
        mean_ms: p50 + 0.2,
        stddev_ms: 0.8,
        jitter_ms: 0.3,
        flagged: 0,
        ...(protocol === 'udp' ? { late: 0, duplicate: 0, stray: 0, invalid: 0 } : {}),
      });
    }
  }
  const benefit: BenefitRow[] = PROBED.filter(([p]) => p !== 'icmp').map(([protocol, metric]) => ({
    protocol,
    metric,
    scope: metric === 'connect' ? 'edge' : 'end_to_end',
    baseline: 'eu-west-1',
    anycast_p50_ms: 40,
    baseline_p50_ms: 60,
    saved_ms: 20 + jitter(99),
    saved_pct: 33.3,
    ci_low_ms: 19,
    ci_high_ms: 21,
    win_rate: 1,
    pairs: 20,
  }));
  return {
    agent: AGENT,
    service,
    started_at: new Date(startedAt).toISOString(),
    scheduled_at: new Date(startedAt).toISOString(),
    duration_ms: 1900,
    paths,
    benefit,
  };
}

/** Field values in a line: VictoriaMetrics stores each as one row. */
function fieldsOf(line: string): number {
  // measurement,tags fields timestamp — no field value here contains an unescaped space or comma
  // inside quotes except `site`, which is a plain word.
  const fields = line.split(' ')[1] ?? '';
  return fields.split(',').length;
}

async function rowsInserted(vm: Victoria): Promise<number> {
  const text = await (await fetch(`${vm.url}/metrics`)).text();
  const m = /^vm_rows_inserted_total\{type="influx"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

interface FillResult {
  rounds: number;
  lines: number;
  fields: number;
  seconds: number;
}

function fill(store: Store, minutes: number, endAt: number): FillResult {
  let rounds = 0;
  let lines = 0;
  let fields = 0;
  const t0 = performance.now();
  for (let m = minutes; m >= 1; m--) {
    for (let s = 0; s < SERVICES; s++) {
      const round = syntheticRound(`svc-${String(s).padStart(3, '0')}`, endAt - m * 60_000 + s * 37, m * 1000 + s);
      for (const l of roundToLines(round)) {
        lines++;
        fields += fieldsOf(l);
      }
      store.saveRound(round);
      rounds++;
    }
  }
  return { rounds, lines, fields, seconds: (performance.now() - t0) / 1000 };
}

interface DrainRun {
  label: string;
  batchLines: number;
  lines: number;
  fields: number;
  seconds: number;
  linesPerS: number;
  fieldsPerS: number;
  rowsArrived: number;
  complete: boolean;
  fill: FillResult;
}

async function drainRun(vm: Victoria, label: string, minutes: number, batchLines: number): Promise<DrainRun> {
  const dir = mkdtempSync(join(tmpdir(), 'anylat-bench-sink-'));
  const store = openStore(join(dir, 'agent.db'), {
    retention: { maxAgeMs: 7 * 86_400_000, maxRows: 10_000_000 },
    outbox: true,
    log: () => {},
  });
  try {
    progress(`${label}: saving ${minutes} min × ${SERVICES} services of rounds`);
    const filled = fill(store, minutes, Date.now());
    const rowsBefore = await rowsInserted(vm);
    const sink = new Sink({
      store,
      agent: AGENT.id,
      influx: { url: vm.url, org: '', bucket: 'anylat' },
      batchLines,
      log: (l) => progress(`  ${l}`),
    });
    progress(`${label}: draining ${filled.lines} lines, ${batchLines} per request`);
    const t0 = performance.now();
    const drained = await sink.drain(600_000);
    const seconds = (performance.now() - t0) / 1000;
    // VictoriaMetrics answers a write before it has inserted the rows: wait for its counter.
    let rowsArrived = 0;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      rowsArrived = (await rowsInserted(vm)) - rowsBefore;
      if (rowsArrived >= filled.fields) break;
    }
    return {
      label,
      batchLines,
      lines: drained.delivered,
      fields: filled.fields,
      seconds,
      linesPerS: drained.delivered / seconds,
      fieldsPerS: filled.fields / seconds,
      rowsArrived,
      complete: drained.ended === 'empty' && drained.delivered === filled.lines && rowsArrived === filled.fields,
      fill: filled,
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const args = benchArgs('sink', USAGE);
  const started = Date.now();
  const before = machineNote();
  const vm = await Victoria.start();
  const runs: DrainRun[] = [];
  try {
    if (args.quick) {
      runs.push(await drainRun(vm, 'backlog of 10 min', 10, 5000));
    } else {
      runs.push(await drainRun(vm, 'backlog of 1 h', 60, 5000));
      for (const batch of [1000, 10_000, 20_000])
        runs.push(await drainRun(vm, `backlog of 30 min, batch ${batch}`, 30, batch));
    }
  } finally {
    await vm.destroy();
  }
  const after = machineNote();
  const lines: string[] = [];
  lines.push(
    `Outbox → VictoriaMetrics (InfluxDB /api/v2/write, gzip), ${SERVICES} services × anycast + 2 unicast × udp, tcp, http, icmp: ${runs[0]!.fill.lines / runs[0]!.fill.rounds} lines per round`,
    '',
  );
  lines.push(
    markdownTable(
      [
        'run',
        'rounds',
        'lines (points)',
        'field values',
        'lines per request',
        'drain time s',
        'points/s',
        'field values/s',
        'all arrived',
        'store: rounds saved/s',
      ],
      runs.map((r) => [
        r.label,
        r.fill.rounds,
        r.lines,
        r.fields,
        r.batchLines,
        fmt(r.seconds, 2),
        Math.round(r.linesPerS),
        Math.round(r.fieldsPerS),
        r.complete ? 'yes' : `no (${r.rowsArrived} of ${r.fields} field values)`,
        Math.round(r.fill.rounds / r.fill.seconds),
      ]),
    ),
    '',
  );
  const hour = runs.find((r) => r.label === 'backlog of 1 h');
  if (hour)
    lines.push(
      `A one-hour outage of ${SERVICES} services (${hour.lines} points) drains in ${fmt(hour.seconds, 1)} s.`,
      '',
    );
  lines.push(
    `machine: ${describeMachine(before)}; at the end: load ${after.loadavg.join(' / ')}; ran ${Math.round((Date.now() - started) / 1000)} s`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  writeResult(args.out, {
    benchmark: 'sink',
    quick: args.quick,
    elapsedS: Math.round((Date.now() - started) / 1000),
    machine: { before, after },
    services: SERVICES,
    runs,
  });
}

await main();
