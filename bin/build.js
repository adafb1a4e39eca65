#!/usr/bin/env node
// `npm run build` (also run by `npm install` and `npm ci`, as `prepare`): compiles agent/ and the
// benchmarks' agent processes to JavaScript in dist/ (tsconfig.build.json: agent/cli.ts ->
// dist/agent/cli.js), copies the files the agent reads beside its modules (the web page, the lab's
// topology), then writes the stamp that tells bin/anylat.js the build is complete and current.
// The agent runs the same either way; the compiled one starts faster and needs about 40 MB less
// memory (no TypeScript loader thread).
//   --clean      remove dist/
//   --optional   (prepare) skip with a note, not an error, when TypeScript or the sources are absent
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DIST, ROOT, STAMP } from './compiled.js';

const args = process.argv.slice(2);
const optional = args.includes('--optional');

/** Files the compiled modules read relative to themselves, copied as they are. */
const ASSETS = ['agent/web/public', 'agent/lab/topology.yaml', 'bench/topology.yaml'];

rmSync(STAMP, { force: true });
if (args.includes('--clean')) {
  rmSync(DIST, { recursive: true, force: true });
  console.log('anylat build: removed dist/; the agent now runs from its TypeScript sources');
  process.exit(0);
}

const skip = (why) => {
  if (!optional) {
    console.error(`anylat build: ${why}`);
    process.exit(1);
  }
  console.log(`anylat build: skipped (${why}); the agent runs from its TypeScript sources through tsx`);
  process.exit(0);
};

const config = join(ROOT, 'tsconfig.build.json');
if (!existsSync(config) || !existsSync(join(ROOT, 'agent', 'cli.ts'))) skip('no sources here to compile');
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  skip('TypeScript is not installed (npm install without --omit=dev installs it)');
}
const started = Date.now();
// a clean tree each time, so a deleted source leaves no stale module behind
rmSync(DIST, { recursive: true, force: true });
const run = spawnSync(process.execPath, [tsc, '-p', config], { cwd: ROOT, stdio: 'inherit' });
if (run.status !== 0) {
  console.error(
    `anylat build: tsc failed (exit ${run.status ?? run.signal}); nothing stamped, so the agent keeps running from its sources`,
  );
  process.exit(1);
}
for (const asset of ASSETS) {
  if (!existsSync(join(ROOT, asset))) continue;
  mkdirSync(dirname(join(DIST, asset)), { recursive: true });
  cpSync(join(ROOT, asset), join(DIST, asset), { recursive: true });
}
// The compiled benchmark children import ../../bin/compiled.js from dist/bench/lib/: point it at
// the one launcher helper instead of shipping a second copy.
mkdirSync(join(DIST, 'bin'), { recursive: true });
writeFileSync(join(DIST, 'bin', 'compiled.js'), "export * from '../../bin/compiled.js';\n");
// Last, so an interrupted build is never taken for a complete one.
writeFileSync(STAMP, `${new Date().toISOString()}\n`);
console.log(`anylat build: compiled agent/ and bench/ to dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
