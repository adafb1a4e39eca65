// Writes the generated Grafana files: dashboards as JSON and the alerting resources as YAML.
// `npm run dashboards` runs this; test/dashboards.test.ts regenerates in memory and compares with
// the committed files, so a change here without regenerating fails the tests.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { alertingFiles } from './alerts.ts';
import { benefitDashboard } from './benefit.ts';
import { toJson } from './common.ts';
import { fleetDashboard } from './fleet.ts';
import { pathDetailDashboard } from './path-detail.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every generated file, keyed by its path relative to the repository root. */
export function renderAll(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [name, d] of [
    ['anylat-benefit', benefitDashboard()],
    ['anylat-path-detail', pathDetailDashboard()],
    ['anylat-fleet', fleetDashboard()],
  ] as const) {
    files.set(`provisioning/dashboards/${name}.json`, toJson(d.build()));
  }
  for (const [path, text] of alertingFiles()) files.set(path, text);
  return files;
}

async function main(): Promise<void> {
  for (const [path, text] of renderAll()) {
    const abs = join(ROOT, path);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, text);
    console.log(`wrote ${path}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
