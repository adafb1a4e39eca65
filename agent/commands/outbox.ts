// `anylat outbox status|requeue`: what waits for InfluxDB and what it refused, and putting dead
// letters back into the outbox once the cause (a proxy, a schema conflict, a bucket) is fixed.
// Safe while the agent runs: the store takes concurrent writers, and a running sink picks the
// requeued lines up at its next batch, oldest first.
import { parseArgs } from 'node:util';
import { configPath, loadConfig } from '../config/load.ts';
import { openStore, type OutboxStatus } from '../store/index.ts';
import { formatDuration, parseDuration } from '../util/duration.ts';
import { UsageError } from '../util/errors.ts';
import { parseArgsOrUsage } from './args.ts';

export const OUTBOX_USAGE = `usage: anylat outbox status [--store PATH | --config FILE] [--agent ID] [--json]
       anylat outbox requeue (--since DUR | --all) [--store PATH | --config FILE] [--agent ID]

status    per agent: lines waiting for InfluxDB (and since when), dead letters (lines InfluxDB
          refused or that were set aside after an hour of 5xx) and their most common reasons
requeue   moves dead letters back into the outbox, at their old place in line, for the sink to
          send again: those that failed within --since (15m, 1h, 7d), or --all of them

  --store PATH     the store file (default: store.path of the config)
  --config FILE    config to read store.path from (default $ANYLAT_CONFIG or ./anylat.yaml)
  --agent ID       only this agent's lines (a store may hold several)
  --json           status as JSON`;

function ago(iso: string | undefined, now: number): string {
  if (iso === undefined) return '';
  return `${formatDuration(Math.max(0, Math.round((now - Date.parse(iso)) / 1000)) * 1000)} ago`;
}

function describe(s: OutboxStatus, now: number): string {
  const lines = [
    `agent ${s.agent}: ${s.outbox_rows} line${s.outbox_rows === 1 ? '' : 's'} waiting for InfluxDB${s.oldest_queued_at ? ` (oldest queued ${ago(s.oldest_queued_at, now)})` : ''}; ${s.dead_letters} dead letter${s.dead_letters === 1 ? '' : 's'}${s.last_failed_at ? ` (last ${ago(s.last_failed_at, now)})` : ''}`,
  ];
  for (const r of s.reasons)
    lines.push(
      `  ${String(r.count).padStart(6)} × ${r.status === undefined ? '' : `${r.status} `}${r.message.replace(/\s+/g, ' ').slice(0, 160)}`,
    );
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgsOrUsage(
    () =>
      parseArgs({
        args: argv,
        options: {
          store: { type: 'string' },
          config: { type: 'string' },
          agent: { type: 'string' },
          since: { type: 'string' },
          all: { type: 'boolean', default: false },
          json: { type: 'boolean', default: false },
          help: { type: 'boolean', short: 'h', default: false },
        },
        strict: true,
        allowPositionals: true,
      }),
    'outbox',
  );
  if (values.help) {
    process.stdout.write(`${OUTBOX_USAGE}\n`);
    return 0;
  }
  const [action, extra] = positionals;
  if (action !== 'status' && action !== 'requeue') {
    throw new UsageError(
      `outbox: ${action === undefined ? 'expected status or requeue' : `unknown action "${action}", expected status or requeue`} (see anylat outbox --help)`,
    );
  }
  if (extra !== undefined) throw new UsageError(`outbox: unexpected argument "${extra}"`);
  if (values.store !== undefined && values.config !== undefined)
    throw new UsageError('outbox: give --store or --config, not both');
  if (values.agent !== undefined && values.agent.trim() === '')
    throw new UsageError('--agent: expected a value, got an empty string');
  const agent = values.agent === undefined ? {} : { agent: values.agent };
  const storePath = values.store ?? loadConfig(configPath(values.config)).store.path;

  if (action === 'status') {
    if (values.since !== undefined || values.all)
      throw new UsageError('outbox status: --since and --all are for requeue');
    return status(storePath, agent, values.json);
  }
  if (values.json) throw new UsageError('outbox requeue: --json is for status');
  if ((values.since === undefined) === !values.all) {
    throw new UsageError('outbox requeue: say which dead letters: --since DUR (those that failed within it) or --all');
  }
  return requeue(storePath, agent, values.since);
}

/** `outbox status`: what waits and what was dead-lettered, per agent. */
function status(storePath: string, agent: { agent?: string }, json: boolean): number {
  const store = openStore(storePath, { readonly: true });
  let agents: OutboxStatus[];
  try {
    agents = store.outboxStatus(agent);
  } finally {
    store.close();
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ store: storePath, agents }, null, 2)}\n`);
    return 0;
  }
  const now = Date.now();
  process.stdout.write(
    agents.length === 0
      ? `nothing waiting and no dead letters in ${storePath}\n`
      : `${agents.map((s) => describe(s, now)).join('\n')}\n`,
  );
  return 0;
}

/** `outbox requeue`: dead letters (those that failed within `within`, or all) back into the outbox. */
function requeue(storePath: string, agent: { agent?: string }, within: string | undefined): number {
  const since = within === undefined ? undefined : Date.now() - parseDuration(within, '--since');
  // Read-only first: a missing store is an error (exit 2), not a new empty file.
  openStore(storePath, { readonly: true }).close();
  // A writer handle without retention: requeueing must not trim anything on the way.
  const store = openStore(storePath, { outbox: true });
  let moved: number;
  try {
    moved = store.requeueDeadLetters({ ...agent, ...(since === undefined ? {} : { since }) });
  } finally {
    store.close();
  }
  const which = within === undefined ? '' : ` that failed within ${within}`;
  process.stdout.write(
    moved === 0
      ? `no dead letters${which} in ${storePath}\n`
      : `moved ${moved} dead letter${moved === 1 ? '' : 's'}${which} back into the outbox of ${storePath}; a running agent sends them with its next batch\n`,
  );
  return 0;
}
