// Which agent runs: the compiled JavaScript in dist/ (`npm run build`) or the TypeScript sources.
// An installed package ships dist/ and no sources: dist/ it is. In a checkout (agent/cli.ts is
// there) dist/ runs while the build finished after the last change to any source: `npm run build`
// writes dist/.compiled last, and a source edited after it (a developer at work) sends everything
// back to tsx until the next build. ANYLAT_SOURCE=1 forces the sources.
// Plain JavaScript: bin/anylat.js decides this before any loader for TypeScript exists.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
/** where `npm run build` writes the compiled JavaScript (git-ignored) */
export const DIST = join(ROOT, 'dist');
/** written by bin/build.js once every file is compiled */
export const STAMP = join(DIST, '.compiled');
/** the trees the build compiles (bench/: the benchmarks' agent processes) */
export const COMPILED_TREES = ['agent', 'bench'];

/** true in a checkout: the TypeScript sources are here to fall back on */
export function isCheckout() {
  return existsSync(join(ROOT, 'agent', 'cli.ts'));
}

function newestSource(dir, newest) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return newest;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'results') newest = newestSource(path, newest);
    } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
      newest = Math.max(newest, statSync(path).mtimeMs);
    }
  }
  return newest;
}

/**
 * True when the compiled JavaScript is there and no source changed since it was built. Looks
 * every time (about 1 ms: a stat per source file).
 */
export function compiledIsFresh() {
  if (!isCheckout()) return existsSync(join(DIST, 'agent', 'cli.js'));
  if (process.env.ANYLAT_SOURCE === '1') return false;
  let built;
  try {
    built = statSync(STAMP).mtimeMs;
  } catch {
    return false;
  }
  let newest = 0;
  for (const tree of COMPILED_TREES) newest = newestSource(join(ROOT, tree), newest);
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) {
    try {
      newest = Math.max(newest, statSync(join(ROOT, file)).mtimeMs);
    } catch {
      // not shipped (an installed package): the sources decide
    }
  }
  return newest <= built;
}

/**
 * The script to run for `tsPath` (a .ts file under agent/ or bench/): its compiled .js in dist/
 * while the build is fresh, with no loader; otherwise the .ts with tsx's loader (`--import tsx`).
 */
export function runnable(tsPath) {
  if (compiledIsFresh()) return { script: join(DIST, relative(ROOT, tsPath)).replace(/\.ts$/, '.js'), execArgv: [] };
  // tsx's loader by absolute URL: the child may run in another directory.
  return { script: tsPath, execArgv: ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] };
}
