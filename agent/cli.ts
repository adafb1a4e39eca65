// The anylat command line. Each subcommand lives in agent/commands/<name>.ts and exports `run`;
// those modules are the only places that wire parts (probes, rounds, store, sink) together.
import { AnylatError } from './util/errors.ts';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  run: {
    summary: 'scheduled agent: rounds on schedule, embedded store, InfluxDB',
    load: () => import('./commands/run.ts'),
  },
  compare: {
    summary: 'one round now: anycast vs each unicast endpoint, per protocol',
    load: () => import('./commands/compare.ts'),
  },
  reflector: {
    summary: 'the far end: STAMP reflector, TCP echo, HTTP endpoint',
    load: () => import('./commands/reflector.ts'),
  },
  report: { summary: 'benefit table from the embedded store', load: () => import('./commands/report.ts') },
  trace: {
    summary: 'the route to an address hop by hop (UDP, rising TTL; Linux)',
    load: () => import('./commands/trace.ts'),
  },
  outbox: {
    summary: 'outbox status|requeue: lines waiting for InfluxDB, dead letters back in line',
    load: () => import('./commands/outbox.ts'),
  },
  config: { summary: 'config check: validate a config file', load: () => import('./commands/config.ts') },
  lab: {
    summary: 'lab up|down|status|fail|heal: the emulated topology (Linux, root)',
    load: () => import('./commands/lab.ts'),
  },
  demo: { summary: 'lab + agents + embedded store + web dashboard', load: () => import('./commands/demo.ts') },
};

export const USAGE = `usage: anylat <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

Run "anylat <command> --help" for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    const { VERSION } = await import('./version.ts');
    // How this process runs, for bug reports: compiled by `npm run build`, or from the sources.
    const how = new URL(import.meta.url).pathname.endsWith('.js') ? 'compiled' : 'TypeScript sources through tsx';
    process.stdout.write(`${VERSION} (${how})\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`anylat: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof AnylatError) {
    process.stderr.write(`anylat: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(
      `anylat: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  }
}
