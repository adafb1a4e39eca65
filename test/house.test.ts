// The house rule of issue 12 item 3, kept: no function in the project's own code (agent/, bench/,
// bin/, dashboard/) is longer than 80 lines; a longer one is split into named steps. Measured with
// the TypeScript parser (bench/lib/code-shape.ts), as `npm run bench:house` prints it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LONG_FUNCTION, longFunctions, sourceFiles } from '../bench/lib/code-shape.ts';

test(`no function in agent/, bench/, bin/ or dashboard/ is longer than ${LONG_FUNCTION} lines`, () => {
  const long = longFunctions(sourceFiles());
  assert.deepEqual(
    long.map((f) => `${f.file}:${f.line} ${f.name} (${f.lines} lines)`),
    [],
    'split these into named steps',
  );
});

test('the measure finds a long function, a long callback and a long page script, and names them', () => {
  const root = mkdtempSync(join(tmpdir(), 'anylat-house-'));
  try {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  const v${i} = ${i};`).join('\n');
    writeFileSync(
      join(root, 'a.ts'),
      [
        `export function short(): void {\n${body(10)}\n}`,
        `export function tooLong(): void {\n${body(LONG_FUNCTION - 1)}\n}`,
        `setTimeout(() => {\n${body(LONG_FUNCTION)}\n}, 1);`,
      ].join('\n'),
    );
    writeFileSync(join(root, 'b.js'), `(function () {\n${body(LONG_FUNCTION)}\n})();\n`);
    const found = longFunctions(['a.ts', 'b.js'], LONG_FUNCTION, root).map((f) => [f.file, f.line, f.lines, f.name]);
    assert.deepEqual(
      found.sort(),
      [
        ['a.ts', 1 + 12 + LONG_FUNCTION + 1, LONG_FUNCTION + 2, '(callback of setTimeout)'],
        ['a.ts', 1 + 12, LONG_FUNCTION + 1, 'tooLong'],
        ['b.js', 1, LONG_FUNCTION + 2, '(anonymous)'],
      ].sort(),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
