// `npm run build` compiles the agent to dist/ and bin/anylat.js runs it; in a checkout only while
// it is current (a source edited after the build sends it back to the TypeScript), in an installed
// package (no sources) always.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
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

  const load = async (): Promise<CompiledModule> =>
    (await import(pathToFileURL(join(dir, 'bin', 'compiled.js')).href)) as CompiledModule;
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
    mkdirSync(join(dir, 'dist'));
    writeFileSync(join(dir, 'dist', '.compiled'), '');
    at('dist/.compiled', T + 10);
    const m = await load();
    assert.equal(m.compiledIsFresh(), true);
    assert.deepEqual(m.runnable(join(dir, 'bench', 'scale.ts')), {
      script: join(dir, 'dist', 'bench', 'scale.js'),
      execArgv: [],
    });
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

describe('bin/anylat.js in an installed package (dist/, no sources)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'anylat-installed-'));
    mkdirSync(join(dir, 'bin'));
    for (const f of ['anylat.js', 'compiled.js']) copyFileSync(join(ROOT, 'bin', f), join(dir, 'bin', f));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('says what is missing, exit 1, when dist/ is not there either', () => {
    const run = spawnSync(process.execPath, [join(dir, 'bin', 'anylat.js'), '--version'], { encoding: 'utf8' });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /the compiled agent \(dist\/agent\/cli\.js\) is missing/);
  });

  it('runs dist/ whatever the stamp and ANYLAT_SOURCE say: there is nothing else to run', async () => {
    mkdirSync(join(dir, 'dist', 'agent'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'agent', 'cli.js'), "console.log('dist ran');\n");
    const run = spawnSync(process.execPath, [join(dir, 'bin', 'anylat.js')], {
      encoding: 'utf8',
      env: { ...process.env, ANYLAT_SOURCE: '1' },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'dist ran\n');
  });
});

describe('npm run build', () => {
  it('compiles the agent to dist/, stamps it, and anylat then runs compiled; ANYLAT_SOURCE=1 runs the sources', async () => {
    const build = spawnSync(process.execPath, [join(ROOT, 'bin', 'build.js')], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    assert.match(build.stdout, /compiled agent\/ and bench\/ to dist\/ in [\d.]+ s/);
    for (const f of [
      'cli.js',
      'web/worker.js',
      'net/tcp-info.js',
      'web/public/index.html',
      'lab/topology.yaml',
      'lab/wire-worker.js',
    ]) {
      assert.ok(existsSync(join(ROOT, 'dist', 'agent', f)), `dist/agent/${f} after the build`);
    }
    for (const f of ['dist/bench/scale-agent.js', 'dist/bench/lib/child.js', 'dist/.compiled'])
      assert.ok(existsSync(join(ROOT, f)), `${f} after the build`);
    // nothing is written beside the sources any more
    for (const f of ['agent/cli.js', 'agent/net/tcp-info.js', 'bench/lib/child.js'])
      assert.equal(existsSync(join(ROOT, f)), false, `${f} beside its source`);
    // Relative imports point at the compiled files, so nothing in the compiled agent needs tsx.
    assert.doesNotMatch(
      readFileSync(join(ROOT, 'dist', 'agent', 'cli.js'), 'utf8'),
      /from "\.[^"]*\.ts"|import\("\.[^"]*\.ts"\)/,
    );

    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const compiled = await runAnylat(['--version']);
    assert.equal(compiled.code, 0, compiled.stderr);
    assert.equal(compiled.stdout, `${version} (compiled)\n`);
    const source = await runAnylat(['--version'], { env: { ...process.env, ANYLAT_SOURCE: '1' } });
    assert.equal(source.code, 0, source.stderr);
    assert.equal(source.stdout, `${version} (TypeScript sources through tsx)\n`);
  });
});
