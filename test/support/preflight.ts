// `npm test` runs this first. As root it prints nothing. As an ordinary user it lists the suites
// that need root and will be skipped, with why, so that a short run is not mistaken for a full one.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const testDir = fileURLToPath(new URL('..', import.meta.url));

/** Every `needsRoot('why')` call in test/*.test.ts: the file and the reason. */
export function rootSuites(dir = testDir): Array<{ file: string; why: string }> {
  const out: Array<{ file: string; why: string }> = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()) {
    const text = readFileSync(join(dir, file), 'utf8');
    for (const m of text.matchAll(/needsRoot\(\s*(['"`])(.*?)\1\s*\)/g)) out.push({ file, why: m[2]! });
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.getuid?.() !== 0) {
  const suites = rootSuites();
  const lines = [
    `npm test as uid ${process.getuid?.()} (not root): ${suites.length} suites need root and will be skipped, each with its reason:`,
    ...suites.map((s) => `  test/${s.file}: ${s.why}`),
    'Everything else runs. For the whole suite: sudo npm test (see CONTRIBUTING.md, "Running the tests").',
    '',
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}
