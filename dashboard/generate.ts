// Writes the generated Grafana files: dashboards as JSON and the alerting resources as YAML.
// `npm run dashboards` runs this; test/dashboards.test.ts regenerates in memory and compares with
// the committed files, so a change here without regenerating fails the tests.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { alertingFiles, type AlertOptions } from './alerts.ts';
import { benefitDashboard } from './benefit.ts';
import { toJson } from './common.ts';
import { fleetDashboard } from './fleet.ts';
import { pathDetailDashboard } from './path-detail.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every generated file, keyed by its path relative to the repository root. */
export function renderAll(options: Partial<AlertOptions> = {}): Map<string, string> {
  const files = new Map<string, string>();
  for (const [name, d] of [
    ['anylat-benefit', benefitDashboard()],
    ['anylat-path-detail', pathDetailDashboard()],
    ['anylat-fleet', fleetDashboard()],
  ] as const) {
    files.set(`provisioning/dashboards/${name}.json`, toJson(d.build()));
  }
  for (const [path, text] of alertingFiles(options)) files.set(path, text);
  return files;
}

/**
 * `npm run dashboards -- [--anycast-slower-ms N] [--docs-url URL]`: site policy baked into the
 * generated files, for what Grafana's environment cannot set (it expands no variables in rule
 * queries, expressions or annotations): the default minimum effect of "anycast slower" (the
 * environment can still pick 1, 2, 3, 5 or 10 ms, see ANYCAST_SLOWER_ENV) and the runbooks' base
 * URL. The committed files use the defaults; the golden test checks those.
 */
export function parseOptions(argv: readonly string[]): Partial<AlertOptions> {
  const { values } = parseArgs({
    args: [...argv],
    options: { 'anycast-slower-ms': { type: 'string' }, 'docs-url': { type: 'string' } },
    strict: true,
  });
  const out: Partial<AlertOptions> = {};
  if (values['anycast-slower-ms'] !== undefined) {
    const n = Number(values['anycast-slower-ms']);
    if (!Number.isFinite(n) || n < 0)
      throw new Error(`--anycast-slower-ms must be a number of milliseconds ≥ 0, got ${values['anycast-slower-ms']}`);
    out.anycastSlowerMs = n;
  }
  if (values['docs-url'] !== undefined) out.docsUrl = values['docs-url'].replace(/\/+$/, '');
  return out;
}

async function main(): Promise<void> {
  for (const [path, text] of renderAll(parseOptions(process.argv.slice(2)))) {
    const abs = join(ROOT, path);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, text);
    console.log(`wrote ${path}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
