// `npm run build` compiles the agent next to its sources and bin/anylat.js runs the compiled agent
// only while it is current: a source edited after the build sends it back to the TypeScript.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, runAnylat } from './support/net.ts';

type CompiledModule = typeof import('../bin/compiled.js');

describe('bin/compiled.js: when the compiled agent may run', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'anylat-build-'));
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'agent', 'probe'), { recursive: true });
    mkdirSync(join(dir, 'bench'));
    copyFileSync(join(ROOT, 'bin', 'compiled.js'), join(dir, 'bin', 'compiled.js'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(join(dir, 'agent', 'cli.ts'), '');
    writeFileSync(join(dir, 'agent', 'probe', 'udp.ts'), '');
    writeFileSync(join(dir, 'bench', 'scale.ts'), '');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const load = async (): Promise<CompiledModule> => (await import(pathToFileURL(join(dir, 'bin', 'compiled.js')).href)) as CompiledModule;
  const at = (path: string, seconds: number) => utimesSync(join(dir, path), seconds, seconds);
  const T = 1_700_000_000;

  it('not without a build', async () => {
    const m = await load();
    assert.equal(m.compiledIsFresh(), false);
    const run = m.runnable(join(dir, 'bench', 'scale.ts'));
    assert.equal(run.script, join(dir, 'bench', 'scale.ts'));
    assert.equal(run.execArgv[0], '--import');
    assert.match(run.execArgv[1]!, /tsx/);
  });

  it('yes while the build is newer than every source, with no loader', async () => {
    for (const f of ['agent/cli.ts', 'agent/probe/udp.ts', 'bench/scale.ts']) at(f, T);
    writeFileSync(join(dir, 'agent', '.compiled'), '');
    at('agent/.compiled', T + 10);
    const m = await load();
    assert.equal(m.compiledIsFresh(), true);
    assert.deepEqual(m.runnable(join(dir, 'bench', 'scale.ts')), { script: join(dir, 'bench', 'scale.js'), execArgv: [] });
  });

  it('no once any source, however deep, changed after the build', async () => {
    at('agent/probe/udp.ts', T + 20);
    assert.equal((await load()).compiledIsFresh(), false);
    at('agent/probe/udp.ts', T);
    at('bench/scale.ts', T + 20);
    assert.equal((await load()).compiledIsFresh(), false);
    at('bench/scale.ts', T);
    assert.equal((await load()).compiledIsFresh(), true);
  });

  it('no when ANYLAT_SOURCE=1 asks for the sources', async () => {
    process.env.ANYLAT_SOURCE = '1';
    try {
      assert.equal((await load()).compiledIsFresh(), false);
    } finally {
      delete process.env.ANYLAT_SOURCE;
    }
  });
});

describe('npm run build', () => {
  it('compiles the agent, stamps it, and anylat then runs compiled; ANYLAT_SOURCE=1 runs the sources', async () => {
    const build = spawnSync(process.execPath, [join(ROOT, 'bin', 'build.js')], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    assert.match(build.stdout, /compiled agent\/ and bench\/ in [\d.]+ s/);
    for (const f of ['agent/cli.js', 'agent/web/worker.js', 'agent/net/tcp-info.js', 'bench/lib/child.js', 'agent/.compiled']) {
      assert.ok(existsSync(join(ROOT, f)), `${f} after the build`);
    }
    // Relative imports point at the compiled files, so nothing in the compiled agent needs tsx.
    assert.doesNotMatch(readFileSync(join(ROOT, 'agent', 'cli.js'), 'utf8'), /from "\.[^"]*\.ts"|import\("\.[^"]*\.ts"\)/);

    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const compiled = await runAnylat(['--version']);
    assert.equal(compiled.code, 0, compiled.stderr);
    assert.equal(compiled.stdout, `${version} (compiled)\n`);
    const source = await runAnylat(['--version'], { env: { ...process.env, ANYLAT_SOURCE: '1' } });
    assert.equal(source.code, 0, source.stderr);
    assert.equal(source.stdout, `${version} (TypeScript sources through tsx)\n`);
  });
});
