// Where the package's own files are, the same whether this module runs from its TypeScript source
// (agent/util/package.ts) or compiled (dist/agent/util/package.js, `npm run build`).
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);

/** true when this process runs the compiled agent from dist/ */
export const COMPILED = here.endsWith('.js');

/** The package's root: where package.json and bin/ are. */
export const PACKAGE_ROOT = resolve(dirname(here), COMPILED ? '../../..' : '../..');

/** The launcher other processes (lab helpers, demo agents) are started with. */
export const ANYLAT_BIN = resolve(PACKAGE_ROOT, 'bin', 'anylat.js');

/** A module's sibling entry point by its source name (`wire-main.ts`): the compiled .js when compiled. */
export function siblingEntry(moduleUrl: string, sourceName: string): URL {
  return new URL(COMPILED ? sourceName.replace(/\.ts$/, '.js') : sourceName, moduleUrl);
}
