// The import rules of docs/architecture.md, held against the code: no import cycle anywhere (by
// file, and by part: a folder, or a file at a tree's top), and no part of the agent importing a
// part on its own layer or above it. Reads imports with the TypeScript parser (bench/lib/code-shape.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { folderCycles, importCycles, importGraph, partOf, sourceFiles } from '../bench/lib/code-shape.ts';

/**
 * The agent's layers, lowest first. A part may import its own files and any part on a lower
 * layer, never one on its own layer or above (so the reflector does not take from the prober,
 * the store from the sink, or the config from the sink).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['agent/util'],
  // the shared vocabulary: names, round result, line protocol, wire codecs, Secret; the version
  ['agent/core', 'agent/version.ts'],
  // the kernel's view of a socket (TCP_INFO, receive timestamps), used by both ends
  ['agent/net'],
  ['agent/probe', 'agent/reflector', 'agent/store', 'agent/schedule', 'agent/lab'],
  ['agent/round', 'agent/sink', 'agent/web', 'agent/metrics'],
  // turns YAML into the typed options of the layers below
  ['agent/config'],
  ['agent/agent.ts'],
  ['agent/demo'],
  ['agent/commands'],
  ['agent/cli.ts'],
];

/** Other trees: what each may import besides itself. bench/ and test/ sit above everything. */
const OTHER_TREES: Record<string, (part: string) => boolean> = {
  dashboard: (p) => p === 'agent/core',
  bin: (p) => p === 'agent/cli.ts',
};

function layerOf(part: string): number | undefined {
  const i = LAYERS.findIndex((l) => l.includes(part));
  return i < 0 ? undefined : i;
}

const files = sourceFiles(['agent', 'bench', 'bin', 'dashboard', 'test']);
const graph = importGraph(files);

describe('imports', () => {
  it('reads the whole tree (the parser found the imports)', () => {
    assert.ok(files.includes('agent/cli.ts') && files.includes('agent/core/model.ts'));
    assert.ok((graph.get('agent/round/run-round.ts') ?? []).includes('agent/core/model.ts'));
  });

  it('has no import cycle between files', () => {
    assert.deepEqual(importCycles(graph), [], 'files that import each other, directly or round about');
  });

  it('has no import cycle between parts (folders)', () => {
    assert.deepEqual(folderCycles(graph), []);
  });

  it('every part of the agent has a layer', () => {
    const parts = [
      ...new Set(files.filter((f) => f.startsWith('agent/') && !f.startsWith('agent/web/public/')).map(partOf)),
    ];
    assert.deepEqual(
      parts.filter((p) => layerOf(p) === undefined),
      [],
      'add the new part to LAYERS in test/imports.test.ts and to docs/architecture.md',
    );
  });

  it('no part imports one on its own layer or above', () => {
    const wrong: string[] = [];
    for (const [from, tos] of graph) {
      const a = partOf(from);
      for (const to of tos) {
        const b = partOf(to);
        if (a === b) continue;
        const tree = from.split('/')[0]!;
        if (tree === 'agent') {
          const la = layerOf(a);
          const lb = layerOf(b);
          if (la !== undefined && (lb === undefined || lb >= la)) wrong.push(`${from} -> ${to}`);
        } else if (tree in OTHER_TREES && to.split('/')[0] !== tree && !OTHER_TREES[tree]!(b)) {
          wrong.push(`${from} -> ${to}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('bench/ and agent/ never import test/', () => {
    const wrong = [...graph].flatMap(([from, tos]) =>
      from.startsWith('test/') ? [] : tos.filter((t) => t.startsWith('test/')).map((t) => `${from} -> ${t}`),
    );
    assert.deepEqual(wrong, []);
  });
});
