// Every benchmark's --quick mode runs and prints its tables with every column, and writes its
// JSON: so the benchmarks cannot rot. The numbers are not checked here (speed is measured in
// bench/, never asserted in tests); that each cell is filled is. accuracy, scale, wire and demo
// need Linux and root (the lab); accuracy, scale and demo wait while another lab is up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './support/net.ts';
import { needsRoot } from './support/root.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'anylat-bench-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `npm run bench:NAME -- --quick --out FILE` (the script package.json names). */
function runBench(
  name: string,
): Promise<{ code: number | null; stdout: string; stderr: string; json: Record<string, unknown> }> {
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
    .scripts;
  const script = scripts[`bench:${name}`];
  assert.ok(script, `package.json has a bench:${name} script`);
  const out = join(dir, `${name}.json`);
  const [cmd, ...args] = script.split(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd === 'node' ? process.execPath : cmd!, [...args, '--quick', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
      } catch {
        // asserted by the caller
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

/** The Markdown tables in `text`: header cells and body rows of cells. */
function tables(text: string): Array<{ header: string[]; rows: string[][] }> {
  const out: Array<{ header: string[]; rows: string[][] }> = [];
  const lines = text.split('\n');
  const cells = (l: string) =>
    l
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.startsWith('|') || !/^\|(-+:?|---:?)(\|-+:?)*\|$/.test(lines[i + 1]!.replace(/\s/g, ''))) continue;
    const header = cells(lines[i]!);
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j]!.startsWith('|'); j++) rows.push(cells(lines[j]!));
    out.push({ header, rows });
    i = j;
  }
  return out;
}

/**
 * Every cell of every row is filled, with one exception the machine decides, not the code: a
 * "X median" or "X p95" over the samples a round keeps is empty when the row's "X flagged" says
 * every sample was flagged for event-loop lag (a busy phase on a loaded machine can do that to a
 * monotonic clock). The flagged share itself must be there, so the samples were taken.
 */
function assertFilled(t: { header: string[]; rows: string[][] }, what: string, columns: string[]): void {
  assert.deepEqual(t.header, columns, `${what}: columns`);
  assert.ok(t.rows.length > 0, `${what}: has rows`);
  const filled = (c: string) => c !== '' && c !== '-' && c !== '-%' && !/NaN|undefined|null/.test(c);
  for (const r of t.rows) {
    assert.equal(r.length, columns.length, `${what}: a row with every column: ${r.join(' | ')}`);
    r.forEach((c, i) => {
      const stat = /^(.+) (median|p95)$/.exec(columns[i]!);
      const flagged = stat ? columns.indexOf(`${stat[1]} flagged`) : -1;
      if (c === '-' && flagged >= 0 && r[flagged] === '100.0%') return;
      assert.ok(filled(c), `${what}: "${columns[i]}" is filled in row ${r.join(' | ')}`);
    });
  }
}

describe('benchmarks, --quick', { timeout: 15 * 60_000 }, () => {
  test(
    'bench:accuracy: anylat − ping per metric and phase, the phases, the reference',
    needsRoot('bench:accuracy builds a lab'),
    async () => {
      const r = await runBench('accuracy');
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
      const [bias, phases, reference, echo, wire, http] = tables(r.stdout);
      const phaseNames = ['idle', 'busy', 'loaded'];
      assertFilled(bias!, 'bias table', [
        'metric',
        ...phaseNames.flatMap((p) => [`${p} median`, `${p} p95`, `${p} flagged`]),
      ]);
      assert.deepEqual(
        bias!.rows.map((row) => row[0]),
        [
          'udp rtt',
          'tcp connect (kernel)',
          'tcp connect (monotonic)',
          'tcp rtt (echo)',
          'http ttfb',
          'http ttfb (monotonic)',
          'icmp rtt',
          'dns query',
        ],
      );
      assertFilled(phases!, 'phase table', [
        'phase',
        'what runs',
        'measured samples',
        'background samples/s',
        'agent CPU',
        'event-loop utilization',
        'loop lag p99 ms',
      ]);
      assertFilled(reference!, 'reference table', [
        'origin',
        'configured RTT ms',
        ...phaseNames.flatMap((p) => [`ping ${p} median`, `ping ${p} p95 − median`]),
      ]);
      assert.deepEqual(
        reference!.rows.map((row) => row[0]),
        ['d1', 'd10', 'd50', 'd150'],
      );
      const byPhase = ['phase', ...phaseNames];
      assertFilled(echo!, 'echo clock table', [
        'phase',
        'timed by the kernel',
        'turnaround subtracted',
        'default median',
        'default p95',
        'default flagged',
        'monotonic median',
        'monotonic p95',
        'monotonic all p95',
        'monotonic flagged',
      ]);
      assert.deepEqual(['phase', ...echo!.rows.map((row) => row[0])], byPhase);
      // The packet capture saw the http probers' connections: tcpdump is installed and parsed.
      assertFilled(wire!, 'wire ttfb table', [
        'phase',
        'wire ttfb samples',
        'wire ttfb − ping median',
        'ttfb (kernel) median',
        'ttfb (kernel) p95',
        'ttfb (monotonic) median',
        'ttfb (monotonic) p95',
        'ttfb (monotonic) flagged',
      ]);
      assert.deepEqual(['phase', ...wire!.rows.map((row) => row[0])], byPhase);
      for (const row of wire!.rows) assert.ok(Number(row[1]) > 0, `${row[0]}: no wire ttfb captured`);
      assertFilled(http!, 'http flagged table', [
        'http metric',
        ...phaseNames.flatMap((p) => [`${p} flagged`, `${p} kernel-timed`, `${p} n`]),
      ]);
      assert.deepEqual(
        http!.rows.map((row) => row[0]),
        ['connect', 'ttfb', 'total', 'warm'],
      );
      assert.equal(r.json.benchmark, 'accuracy');
      assert.equal(r.json.quick, true);
      assert.deepEqual(
        (r.json.phases as Array<{ phase: string }>).map((p) => p.phase),
        phaseNames,
      );
    },
  );

  test(
    'bench:scale: a udp/tcp step and an icmp step with every column',
    needsRoot('bench:scale builds a lab'),
    async () => {
      const r = await runBench('scale');
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
      const [grow, icmp] = tables(r.stdout);
      assertFilled(grow!, 'udp/tcp table', [
        'paths',
        'services',
        'offered samples/s',
        'sustained samples/s',
        'agent CPU',
        'machine CPU',
        'peak RSS MB',
        'loop lag p99 ms',
        'rounds started / late / abandoned',
        'udp rtt bias',
        'tcp connect bias',
        'tcp echo bias',
        'flagged udp / echo',
        'p95 ≤ 1 ms',
        'kept up',
      ]);
      assertFilled(icmp!, 'icmp table', [
        'paths',
        'offered samples/s',
        'sustained samples/s',
        'agent CPU',
        'machine CPU',
        'peak RSS MB',
        'loop lag p99 ms',
        'rounds started / late / abandoned',
        'icmp rtt bias',
        'kept up',
      ]);
      assert.equal(r.json.benchmark, 'scale');
      const steps = r.json.steps as Array<{ kind: string; rounds: { started: number } }>;
      assert.deepEqual(
        steps.map((s) => s.kind),
        ['udp+tcp', 'icmp'],
      );
      for (const s of steps) assert.ok(s.rounds.started > 0, `${s.kind}: rounds ran`);
    },
  );

  test('bench:sink: the outbox drains into VictoriaMetrics, every field arrives', async () => {
    const r = await runBench('sink');
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
    const [t] = tables(r.stdout);
    assertFilled(t!, 'sink table', [
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
    ]);
    assert.equal(t!.rows[0]![8], 'yes', 'VictoriaMetrics counted every field value the outbox held');
    assert.equal(r.json.benchmark, 'sink');
  });

  test("bench:web: page refreshes per window, on the dashboard thread and inline, with the agent thread's lag", async () => {
    const r = await runBench('web');
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
    const [t] = tables(r.stdout);
    assertFilled(t!, 'web table', [
      'window',
      'rounds in window',
      'mode',
      'refreshes',
      'refresh median ms',
      'refresh p95 ms',
      'agent-thread lag p99 ms',
      'lag max ms',
      'ticks late > 1 ms',
      'agent time flagged %',
    ]);
    assert.deepEqual(
      t!.rows.map((row) => `${row[0]} ${row[2]}`),
      ['1h', '6h', '24h', '7d'].flatMap((w) => [`${w} thread`, `${w} inline`]),
    );
    assert.equal(r.json.benchmark, 'web');
    assert.equal(r.json.quick, true);
    const runs = r.json.runs as Array<Record<string, unknown> & { agent: Record<string, unknown> }>;
    assert.equal(runs.length, 8);
    const fields = [
      'window',
      'roundsInWindow',
      'mode',
      'refreshes',
      'refreshMs',
      'refreshMedianMs',
      'refreshP95Ms',
      'agent',
    ];
    const agentFields = [
      'seconds',
      'ticks',
      'lagP99Ms',
      'lagMaxMs',
      'lateTicks',
      'flaggedPct',
      'flaggedBusyPct',
      'utilization',
    ];
    for (const run of runs) {
      for (const f of fields)
        assert.ok(run[f] !== undefined && run[f] !== null, `${run.window} ${run.mode}: ${f} is filled`);
      for (const f of agentFields)
        assert.equal(typeof run.agent[f], 'number', `${run.window} ${run.mode}: agent.${f} is a number`);
      assert.ok((run.roundsInWindow as number) > 0, `${run.window} ${run.mode}: the window holds rounds`);
    }
    for (const f of agentFields)
      assert.equal(typeof (r.json.idle as Record<string, unknown>)[f], 'number', `idle.${f} is a number`);
  });

  test(
    'bench:demo: the demo with Chromium on its page, loss and flagged share per region, path and metric',
    needsRoot('bench:demo runs the demo, which builds the lab'),
    async () => {
      const r = await runBench('demo');
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
      const [paths, regions] = tables(r.stdout);
      const metrics = [
        'udp rtt',
        'tcp connect',
        'tcp rtt',
        'http connect',
        'http ttfb',
        'http total',
        'http warm',
        'icmp rtt',
        'dns query',
      ];
      assertFilled(paths!, 'path table', [
        'region',
        'path',
        'samples per metric',
        'lost',
        ...metrics.map((m) => `${m} lost / flagged`),
        'failures',
      ]);
      assert.deepEqual(
        paths!.rows.map((row) => `${row[0]} ${row[1]}`).sort(),
        ['us-east', 'eu-west', 'ap-south']
          .flatMap((g) => ['anycast', 'us-east', 'eu-west'].map((e) => `${g} ${e}`))
          .sort(),
      );
      for (const row of paths!.rows)
        for (const cell of row.slice(4, 4 + metrics.length))
          assert.match(cell, /^\d+\.\d% \/ (\d+\.\d%|-)$/, `a metric cell in ${row.join(' | ')}`);
      assertFilled(regions!, 'region table', [
        'region',
        'rounds',
        'http total in every path',
        'http warm in every path',
        'total benefit rows',
        'warm benefit rows',
        'rounds late / skipped',
        'loop lag p99 ms',
      ]);
      assert.deepEqual(regions!.rows.map((row) => row[0]).sort(), ['ap-south', 'eu-west', 'us-east']);
      for (const row of regions!.rows) assert.ok(Number(row[1]) > 0, `${row[0]}: rounds in the window`);
      assert.match(r.stdout, /^load average \(1 min\) during the run: min [\d.]+, median [\d.]+, max [\d.]+/m);
      assert.match(r.stdout, /^all paths: \d+ of \d+ samples lost/m);
      assert.equal(r.json.benchmark, 'demo');
      assert.equal(r.json.quick, true);
    },
  );

  test(
    'bench:wire: ping over the wire against loopback, idle and under a CPU hog, with the loss',
    needsRoot('bench:wire creates network namespaces and TUN devices'),
    async () => {
      const r = await runBench('wire');
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
      const [t] = tables(r.stdout);
      assert.deepEqual(t!.header, [
        'link',
        'machine',
        'configured RTT',
        'lost',
        'min',
        'p50',
        'mean',
        'p99',
        'max',
        'p50 − configured',
        'mean − configured',
      ]);
      const links = ['loopback (no wire)', '0 ms each way', '1 ms each way', '10 ms each way', '50 ms each way'];
      assert.deepEqual(
        t!.rows.map((row) => row[0]),
        [...links, ...links],
      );
      assert.deepEqual(
        [...new Set(t!.rows.map((row) => row[1]))].map((m) => (m ?? '').replace(/\d+ busy loops/, 'N busy loops')),
        ['idle', 'CPU hog (N busy loops)'],
      );
      for (const row of t!.rows) {
        assert.match(row[3]!, /^\d+ of 100$/, `lost in ${row.join(' | ')}`);
        assert.ok(
          row.slice(4, 9).every((c) => /^\d+\.\d{3}$/.test(c)),
          `figures in ${row.join(' | ')}`,
        );
      }
      assert.match(
        r.stdout,
        /^wire: \d+ packets read, \d+ forwarded, \d+ dropped for a full queue, \d+ write errors; lateness p50 [\d.]+ µs/m,
      );
      assert.equal(r.json.benchmark, 'wire');
    },
  );
});
