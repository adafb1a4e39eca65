// The edge process: `node --import tsx agent/lab/edge-main.ts STATE_DIR REGION`, started by the
// lab inside anylat-edge-REGION. Picks the serving origin from the lab state (nearest origin not
// failed), re-reading it on SIGHUP (sent by `lab fail`/`heal`) and whenever the file changes.
import { statSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { startEdge } from './edge.ts';
import { originFor } from './routing.ts';
import { readState, statePath, type LabState } from './state.ts';

const [dir, region] = process.argv.slice(2);
if (!dir || !region) {
  process.stderr.write('usage: edge-main.ts STATE_DIR REGION\n');
  process.exit(2);
}
process.title = `anylat-edge-${region}`;
const log = (line: string) => process.stderr.write(`${new Date().toISOString()} edge/${region}: ${line}\n`);

let state: LabState | undefined;
let mtime = 0;
let serving: string | undefined;

function reload(): void {
  try {
    mtime = statSync(statePath(dir!)).mtimeMs;
    state = readState(dir!);
  } catch (err) {
    log(`cannot read the lab state: ${(err as Error).message}`);
    return;
  }
  const now = choose();
  if (now?.name !== serving) {
    log(`serving origin: ${serving ?? 'none'} -> ${now?.name ?? 'none'}`);
    serving = now?.name;
  }
}

function choose(): { name: string; address: string } | undefined {
  if (!state) return undefined;
  const me = state.topology.edges.find((e) => e.region === region);
  if (!me) return undefined;
  const o = originFor(state.topology, me, state.failures);
  return o && o.node.address ? { name: o.node.region, address: o.node.address } : undefined;
}

reload();
if (!state) {
  log(`no lab state in ${dir}`);
  process.exit(1);
}
const t = state.topology;
const edge = await startEdge({
  anycast: t.anycast,
  udpPorts: [t.ports.udp, t.ports.dns],
  tcpPorts: [...new Set([t.ports.tcp, t.ports.http, t.ports.dns])],
  origin: choose,
  log,
});
log(
  `listening on ${t.anycast}: udp ${t.ports.udp}, ${t.ports.dns}, tcp ${[...new Set([t.ports.tcp, t.ports.http, t.ports.dns])].join(', ')}`,
);

const statsFile = join(dir, `edge-${region}.stats.json`);
const timer = setInterval(() => {
  try {
    if (statSync(statePath(dir)).mtimeMs !== mtime) reload();
  } catch {
    // state gone: the lab is being torn down
  }
  try {
    writeFileSync(
      `${statsFile}.tmp`,
      JSON.stringify({ pid: process.pid, at: new Date().toISOString(), serving: serving ?? null, ...edge.stats() }),
    );
    renameSync(`${statsFile}.tmp`, statsFile);
  } catch {
    // the state directory is gone (lab down in progress, or removed by hand): keep relaying
  }
}, 500);

process.on('SIGHUP', reload);
const stop = async () => {
  clearInterval(timer);
  await edge.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
