// Text tables for `anylat lab up|status|show|fail|heal`.
import type { LabDescription } from './lab.ts';
import type { LabStatus } from './status.ts';
import type { LabLink } from './topology.ts';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function ms(x: number): string {
  return `${Number(x.toFixed(3))}`;
}

/** Per agent: where anycast leads and the round trips each path implies. */
export function formatPaths(d: LabDescription): string {
  const rows = [
    [
      'agent',
      'anycast: edge -> origin',
      'edge rtt ms',
      'via edge rtt ms',
      ...d.origins.map((o) => `unicast ${o.region} rtt ms`),
    ],
  ];
  for (const a of d.agents) {
    const ac = a.anycast;
    rows.push([
      a.region,
      ac.edge ? `${ac.edge} -> ${ac.origin ?? '(no origin up)'}` : '(no edge up)',
      ac.edgeRtt ? `${ms(ac.edgeRtt.minMs)} / ${ms(ac.edgeRtt.meanMs)}` : '-',
      ac.originRtt ? `${ms(ac.originRtt.minMs)} / ${ms(ac.originRtt.meanMs)}` : '-',
      ...a.unicast.map((u) => (u.failed ? 'failed' : `${ms(u.rtt.minMs)} / ${ms(u.rtt.meanMs)}`)),
    ]);
  }
  return `${table(rows)}\n(rtt: min / mean; jitter only adds delay)`;
}

/** The links with their one-way delay, jitter and loss. */
export function formatLinks(
  links: Array<LabLink & { up?: boolean; stats?: LabStatus['links'][number]['stats'] }>,
): string {
  const withStats = links.some((l) => l.stats !== undefined || l.up !== undefined);
  const rows = [
    [
      'link',
      'class',
      'delay ms',
      'jitter ms',
      'loss %',
      'a address',
      'b address',
      ...(withStats ? ['state', 'packets a>b', 'packets b>a', 'lost'] : []),
    ],
  ];
  for (const l of links) {
    rows.push([
      l.id,
      l.class,
      ms(l.delayMs),
      ms(l.jitterMs),
      ms(l.lossPct),
      l.a.address,
      l.b.address,
      ...(withStats
        ? [
            l.up === false ? 'DOWN' : 'up',
            String(l.stats?.ab.forwarded ?? '-'),
            String(l.stats?.ba.forwarded ?? '-'),
            String(l.stats ? l.stats.ab.lost + l.stats.ba.lost : '-'),
          ]
        : []),
    ]);
  }
  return table(rows);
}

/** `lab up` and `lab show`. */
export function formatDescription(d: LabDescription): string {
  const lines = [
    `anycast ${d.anycast} (udp ${d.ports.udp}, tcp ${d.ports.tcp}, http ${d.ports.http}, dns ${d.ports.dns}); topology ${d.topologyFile}`,
    `origins: ${d.origins.map((o) => `${o.region} ${o.address}${o.failed ? ' (failed)' : ''}`).join(', ')}`,
    `edges: ${d.edges.map((e) => `${e.region}${e.failed ? ' (failed)' : ` -> ${e.origin ?? 'no origin'}`}`).join(', ')}`,
    '',
    formatPaths(d),
  ];
  return lines.join('\n');
}

/** `lab status`. */
export function formatStatus(s: LabStatus): string {
  if (s.phase === 'down') {
    const stray = s.namespaces.map((n) => n.name);
    return stray.length === 0
      ? `no lab is up (state directory ${s.dir})`
      : `no lab state in ${s.dir}, but namespaces are left: ${stray.join(', ')}; run "anylat lab down"`;
  }
  const d = s.description!;
  const out = [
    `lab ${s.up ? 'up' : s.phase === 'starting' ? 'starting (or interrupted while starting)' : 'DEGRADED'} (state ${s.dir})`,
    `failures: ${d.failures.edges.length + d.failures.origins.length === 0 ? 'none' : [...d.failures.edges.map((r) => `edge/${r}`), ...d.failures.origins.map((r) => `origin/${r}`)].join(', ')}`,
    '',
    formatDescription(d),
    '',
    table([
      ['process', 'pid', 'alive', 'namespace', 'log'],
      ...s.processes.map((p) => [p.name, String(p.pid), p.alive ? 'yes' : 'NO', p.netns ?? '(root)', p.log]),
    ]),
    '',
    table([
      ['namespace', 'present'],
      ...s.namespaces.map((n) => [n.name, n.present ? (n.expected ? 'yes' : 'yes (not in topology)') : 'MISSING']),
    ]),
    '',
    formatLinks(s.links),
  ];
  if (s.wireLateness && s.wireLateness.samples > 0) {
    const l = s.wireLateness;
    out.push(
      '',
      `wire scheduling: packets left ${l.p50} µs (p50), ${l.p99} µs (p99), ${l.max} µs (max) after their due time (last ${l.samples} packets)`,
    );
  }
  return out.join('\n');
}
