// node --import tsx bench/http-flags.ts [--runs N] [--cli DIR]
//
// How many http samples does `anylat compare --protocol http` flag for event-loop lag, per metric?
// A reflector on 127.0.0.1 and two delay relays in this process (bench/lib/delay-relay.ts:
// 127.0.0.2 holds each direction 5 ms, a 10 ms path; 127.0.0.3 holds 25 ms, a 50 ms path) stand in
// for the anycast and a regional endpoint; `compare` runs in its own process, as a user runs it, at
// its defaults (20 samples, 50 ms spacing) and at --samples 100 --spacing 20ms. Loopback only.
// --cli DIR runs DIR/agent/cli.ts instead (another checkout, to compare before and after).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startReflector } from '../agent/reflector/index.ts';
import { startDelayRelay } from './lib/delay-relay.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, cli: { type: 'string', default: ROOT } },
});
const runs = Number(values.runs);
const cli = join(values.cli!, 'agent', 'cli.ts');

interface JsonPath {
  endpoint: string;
  protocol: string;
  metric: string;
  received: number;
  flagged: number;
}

function compare(args: string[]): Promise<JsonPath[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'compare', ...args, '--json'], {
      cwd: values.cli,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += String(c)));
    child.stderr.on('data', (c: Buffer) => (err += String(c)));
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`compare exited ${code}: ${err}`));
      else resolve((JSON.parse(out) as { paths: JsonPath[] }).paths);
    });
  });
}

const reflector = await startReflector({
  site: 'far',
  binds: ['127.0.0.1'],
  udp: false,
  tcp: false,
  http: { port: 0 },
  log: () => {},
});
const port = reflector.listening.find((l) => l.kind === 'http')!.port;
const near = await startDelayRelay({ listen: '127.0.0.2', target: '127.0.0.1', delayMs: 5, tcpPort: port });
const far = await startDelayRelay({ listen: '127.0.0.3', target: '127.0.0.1', delayMs: 25, tcpPort: port });
try {
  const shapes: Array<{ name: string; args: string[] }> = [
    { name: 'defaults (20 samples, 50 ms spacing)', args: [] },
    { name: '--samples 100 --spacing 20ms', args: ['--samples', '100', '--spacing', '20ms'] },
  ];
  const lines: string[] = ['| run | path | connect | ttfb | total | warm |', '| --- | --- | --- | --- | --- | --- |'];
  for (const shape of shapes) {
    const sums = new Map<string, { received: number; flagged: number }>();
    for (let i = 0; i < runs; i++) {
      const paths = await compare([
        '127.0.0.2',
        'far=127.0.0.3',
        '--protocol',
        'http',
        '--http-url',
        `http://svc.anylat.test:${port}/`,
        '--anycast-terminates-tcp',
        'false',
        ...shape.args,
      ]);
      for (const p of paths) {
        const key = `${p.endpoint === 'anycast' ? '10 ms' : '50 ms'}\u0000${p.metric}`;
        const s = sums.get(key) ?? { received: 0, flagged: 0 };
        s.received += p.received;
        s.flagged += p.flagged;
        sums.set(key, s);
      }
    }
    for (const path of ['10 ms', '50 ms']) {
      const cells = ['connect', 'ttfb', 'total', 'warm'].map((m) => {
        const s = sums.get(`${path}\u0000${m}`);
        return s ? `${s.flagged}/${s.received} (${((100 * s.flagged) / Math.max(1, s.received)).toFixed(1)}%)` : '–';
      });
      lines.push(`| ${shape.name} × ${runs} | ${path} | ${cells.join(' | ')} |`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await near.close();
  await far.close();
  await reflector.close();
}
