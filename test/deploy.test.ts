// The Dockerfile, .dockerignore and systemd units reference commands, options, paths and files
// that exist, agree with each other, and (where this host can show it without Docker or systemd)
// work: the image's contents run without devDependencies, and the units' capability and
// NoNewPrivileges settings still let ping open raw sockets and the reflector bind port < 1024.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NOBODY, ROOT, assertNobodyCanRead, runAnylat } from './support/net.ts';

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

function dockerfile(): Instruction[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const joined = text.replace(/\\\n/g, ' ');
  let stage = -1;
  const out: Instruction[] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile: cannot read "${line}"`);
    if (m[1] === 'FROM') stage++;
    out.push({ op: m[1]!, args: m[2]!.replace(/\s+/g, ' '), stage });
  }
  return out;
}

function dockerignore(): string[] {
  return readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Enough of .dockerignore's matching for the patterns this repo uses: names, `dir/…`, `**\/*.ext`, `*.ext`. */
function ignored(path: string, patterns: string[]): boolean {
  return patterns.some((p) => {
    if (p.startsWith('**/*')) return path.endsWith(p.slice(4));
    if (p.startsWith('*')) return !path.includes('/') && path.endsWith(p.slice(1));
    return path === p || path.startsWith(`${p}/`);
  });
}

function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  assert.ok(
    Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'),
    `expected exec form (JSON array), got ${args}`,
  );
  return parsed as string[];
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};

describe('Dockerfile', () => {
  const ins = dockerfile();
  const final = Math.max(...ins.map((i) => i.stage));
  const inFinal = ins.filter((i) => i.stage === final);

  it('builds on node:20-slim, the Node major package.json asks for', () => {
    const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args.split(' ')[0]);
    assert.ok(froms.length >= 1);
    const major = /(\d+)/.exec(pkg.engines.node)![1];
    for (const f of froms) assert.equal(f, `node:${major}-slim`);
  });

  it('installs ping in the image that runs, compiles the agent, and keeps production dependencies only', () => {
    assert.ok(
      inFinal.some((i) => i.op === 'RUN' && /apt-get install\b.*\biputils-ping\b/.test(i.args)),
      'iputils-ping in the final stage',
    );
    // `npm ci` runs `prepare` (the build), which needs TypeScript; the dev dependencies go after it.
    const install = ins.find((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
    assert.ok(install, 'a RUN with npm ci');
    assert.match(install.args, /\bnpm ci\b(?! --omit).*&& npm prune --omit=dev\b/);
    assert.equal(pkg.scripts.prepare, 'node bin/build.js --optional');
    for (const f of ['tsconfig.json', 'tsconfig.build.json', 'bin', 'agent']) {
      assert.ok(
        ins.some((i) => i.stage === install.stage && i.op === 'COPY' && i.args.split(' ').slice(0, -1).includes(f)),
        `${f} is in the build stage before npm ci builds`,
      );
    }
    assert.ok(
      inFinal.some((i) => i.op === 'COPY' && i.args === '--from=build /opt/anylat/dist/agent ./dist/agent'),
      'the compiled agent goes into the image',
    );
    assert.ok(
      !inFinal.some((i) => i.op === 'COPY' && /(^| )(\.\/)?agent( |$)|\/opt\/anylat\/agent /.test(i.args)),
      'the image carries dist/, not the sources',
    );
    // Without a current build bin/anylat.js runs the TypeScript through tsx: it must survive the prune.
    assert.match(readFileSync(join(ROOT, 'bin/anylat.js'), 'utf8'), /import\('tsx\/esm\/api'\)/);
    assert.ok(pkg.dependencies.tsx, 'tsx is a runtime dependency');
    assert.equal(pkg.devDependencies.tsx, undefined);
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const patterns = dockerignore();
    const copies = ins.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));
    assert.ok(copies.length >= 3);
    for (const c of copies) {
      const parts = c.args.split(' ');
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(join(ROOT, src)), `COPY ${src}: no such file in the repository`);
        assert.ok(!ignored(src.replace(/^\.\//, ''), patterns), `COPY ${src}: excluded by .dockerignore`);
      }
    }
    for (const p of ['node_modules', '.git', 'tmp'])
      assert.ok(ignored(p, patterns), `.dockerignore should exclude ${p}`);
  });

  it('the entrypoint is bin/anylat.js and the default command is a valid `anylat run`', async () => {
    const entry = execForm(inFinal.find((i) => i.op === 'ENTRYPOINT')!.args);
    assert.deepEqual(entry, ['anylat']);
    const link = inFinal.find((i) => i.op === 'RUN' && /ln -s \S+ \/usr\/local\/bin\/anylat/.test(i.args))!;
    const target = /ln -s (\S+) \/usr\/local\/bin\/anylat/.exec(link.args)![1]!;
    const workdir = inFinal.filter((i) => i.op === 'WORKDIR').at(-1)!.args;
    assert.ok(target.startsWith(`${workdir}/`), `${target} is outside WORKDIR ${workdir}`);
    const inRepo = join(ROOT, target.slice(workdir.length + 1));
    assert.ok(existsSync(inRepo), `${target} maps to ${inRepo}, which does not exist`);
    assert.ok((statSync(inRepo).mode & 0o111) !== 0, `${inRepo} is not executable`);
    assert.match(readFileSync(inRepo, 'utf8'), /^#!\/usr\/bin\/env node\n/);

    const cmd = execForm(inFinal.find((i) => i.op === 'CMD')!.args);
    assert.deepEqual(cmd.slice(0, 3), ['run', '--config', '/etc/anylat/anylat.yaml']);
    // The same arguments, with a config that has a known mistake: anylat must get as far as
    // reading the config (the options parse), not stop at usage.
    const bad = join(ROOT, 'test/fixtures/config/deadline-not-shorter.yaml');
    const r = await runAnylat([...cmd.slice(0, 2), bad, ...cmd.slice(3)]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /deadline 10s must be shorter than the interval/);
    // The example config is in the image beside where the real one is mounted.
    assert.ok(inFinal.some((i) => i.op === 'COPY' && i.args === 'anylat.example.yaml /etc/anylat/anylat.example.yaml'));
  });

  it('keeps the store in a volume the runtime user owns', () => {
    const env = inFinal
      .filter((i) => i.op === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /\bSTATE_DIRECTORY=\/var\/lib\/anylat\b/);
    assert.ok(inFinal.some((i) => i.op === 'VOLUME' && i.args === '/var/lib/anylat'));
    const user = inFinal.find((i) => i.op === 'USER')?.args;
    assert.ok(user && user !== 'root' && user !== '0');
    assert.ok(inFinal.some((i) => i.op === 'RUN' && i.args.includes(`chown ${user}:${user} /var/lib/anylat`)));
  });

  it("the runtime user can bind the reflector's port 862: node gets CAP_NET_BIND_SERVICE, setcap is removed again", () => {
    const user = inFinal.find((i) => i.op === 'USER')!.args;
    assert.notEqual(user, 'root');
    const run = inFinal.find((i) => i.op === 'RUN' && /\bsetcap\b/.test(i.args));
    assert.ok(run, 'a RUN with setcap in the final stage');
    assert.match(run.args, /apt-get install\b.*\blibcap2-bin\b/);
    assert.match(run.args, /setcap cap_net_bind_service=\+ep "\$\(readlink -f "\$\(command -v node\)"\)"/);
    assert.match(run.args, /setcap .*&& apt-get purge -y libcap2-bin\b/);
    assert.ok(inFinal.indexOf(run) < inFinal.findIndex((i) => i.op === 'USER'), 'set as root, before USER');
  });

  it("exposes the reflector's default ports", async () => {
    const help = await runAnylat(['reflector', '--help']);
    const udp = /--udp-port N\s+STAMP port \(default (\d+)/.exec(help.stdout)?.[1];
    const tcp = /--tcp-port N\s+TCP echo port \(default (\d+)/.exec(help.stdout)?.[1];
    const http = /--http-port N\s+HTTP port \(default (\d+)/.exec(help.stdout)?.[1];
    assert.ok(udp && tcp && http, help.stdout);
    const exposed = inFinal.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(' '));
    assert.deepEqual(exposed.sort(), [`${udp}/udp`, `${tcp}/tcp`, `${http}/tcp`].sort());
  });
});

describe('what the image carries runs without devDependencies', () => {
  // The image gets package.json, the lock file, bin/, dist/agent (compiled in the build stage, no
  // sources) and production node_modules. Rebuild that here from this checkout (compiled into the
  // copy, node_modules as hard links where the file system allows, then the lock file's dev-only
  // packages removed) and run the CLI from it.
  const dir = join(ROOT, 'tmp', `image-${process.pid}`);
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('config check and a loopback compare work from the pruned copy', async () => {
    mkdirSync(dir, { recursive: true });
    for (const f of [
      'package.json',
      'package-lock.json',
      'anylat.example.yaml',
      'tsconfig.json',
      'tsconfig.build.json',
    ])
      cpSync(join(ROOT, f), join(dir, f));
    for (const d of ['bin', 'agent', 'bench']) cpSync(join(ROOT, d), join(dir, d), { recursive: true });
    // A worktree's node_modules may be a link to a shared one: copy what it points at, never the
    // link, or the prune below would delete the shared packages.
    const modules = realpathSync(join(ROOT, 'node_modules'));
    const linked = spawnSync('cp', ['-al', modules, join(dir, 'node_modules')]);
    if (linked.status !== 0) cpSync(modules, join(dir, 'node_modules'), { recursive: true, verbatimSymlinks: true });
    assert.equal(lstatSync(join(dir, 'node_modules')).isSymbolicLink(), false);
    const build = spawnSync(process.execPath, [join(dir, 'bin', 'build.js')], { cwd: dir, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
    // as in the image: the compiled agent only (bin/anylat.js then has no sources to fall back on)
    for (const d of ['agent', 'bench', 'dist/bench', 'dist/bin'])
      rmSync(join(dir, d), { recursive: true, force: true });
    // What `npm ci --omit=dev` leaves out: every package the lock file marks dev-only.
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev === true);
    for (const [path] of devOnly) rmSync(join(dir, path), { recursive: true, force: true });
    for (const dev of Object.keys(pkg.devDependencies)) {
      assert.ok(
        devOnly.some(([path]) => path === `node_modules/${dev}`),
        `${dev} is not marked dev in package-lock.json`,
      );
      assert.equal(existsSync(join(dir, 'node_modules', dev)), false, `${dev} still installed`);
    }

    const anylat = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [join(dir, 'bin/anylat.js'), ...args], {
          cwd: dir,
          env: { ...process.env, ...env },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const version = await anylat(['--version']);
    assert.equal(version.stdout, `${pkg.version} (compiled)\n`, version.stderr);
    const check = await anylat(['config', 'check', '--config', 'anylat.example.yaml'], { INFLUX_TOKEN: 'x' });
    assert.equal(check.code, 0, check.stderr);
    const cmp = await anylat([
      'compare',
      '127.0.0.1',
      'lo=127.0.0.2',
      '--protocol',
      'icmp',
      '--samples',
      '2',
      '--spacing',
      '20ms',
      '--timeout',
      '1s',
      '--json',
    ]);
    assert.equal(cmp.code, 0, cmp.stderr);
    assert.equal((JSON.parse(cmp.stdout) as { service: string }).service, 'adhoc');
  });
});

// ---------------------------------------------------------------- systemd units

type Unit = Record<string, Array<[string, string]>>;

function unit(file: string): Unit {
  const out: Unit = {};
  let section = '';
  for (const raw of readFileSync(join(ROOT, file), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1]!;
      out[section] = [];
      continue;
    }
    const kv = /^(\w+)=(.*)$/.exec(line);
    assert.ok(kv && section, `${file}: cannot read "${line}"`);
    out[section]!.push([kv[1]!, kv[2]!]);
  }
  return out;
}

function get(u: Unit, section: string, key: string): string | undefined {
  return u[section]?.filter(([k]) => k === key).at(-1)?.[1];
}

// Directives this repo's units use, per section: a typo is an error, not a silently ignored line.
const KNOWN: Record<string, string[]> = {
  Unit: ['Description', 'Documentation', 'Wants', 'After', 'Requires', 'Before'],
  Service: [
    'Type',
    'User',
    'Group',
    'ExecStart',
    'ExecStartPre',
    'ExecReload',
    'Environment',
    'EnvironmentFile',
    'Restart',
    'RestartSec',
    'RestartPreventExitStatus',
    'TimeoutStopSec',
    'StateDirectory',
    'StateDirectoryMode',
    'WorkingDirectory',
    'UMask',
    'AmbientCapabilities',
    'CapabilityBoundingSet',
    'NoNewPrivileges',
    'ProtectSystem',
    'ProtectHome',
    'PrivateTmp',
    'PrivateDevices',
    'ProtectKernelTunables',
    'ProtectKernelModules',
    'ProtectKernelLogs',
    'ProtectControlGroups',
    'ProtectClock',
    'ProtectHostname',
    'RestrictNamespaces',
    'RestrictRealtime',
    'RestrictSUIDSGID',
    'LockPersonality',
    'RestrictAddressFamilies',
  ],
  Install: ['WantedBy'],
};

const INSTALL_DIR = '/opt/anylat';

/** `ExecStart` split into node, the script (mapped into the repository) and anylat's arguments. */
function execStart(u: Unit): { node: string; script: string; args: string[] } {
  const [node, script, ...args] = get(u, 'Service', 'ExecStart')!.split(/\s+/);
  assert.ok(script?.startsWith(`${INSTALL_DIR}/`), `ExecStart runs ${script}, expected a file under ${INSTALL_DIR}`);
  return { node: node!, script: join(ROOT, script!.slice(INSTALL_DIR.length + 1)), args };
}

function caps(value: string | undefined): string[] {
  return (value ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((c) => c.replace(/^CAP_/, '').toLowerCase());
}

/** Runs a command as an unprivileged user with the unit's capabilities and NoNewPrivileges (setpriv). */
function asUnit(u: Unit, command: string[], options: { ambient?: boolean } = {}) {
  assertNobodyCanRead();
  const ambient = options.ambient === false ? [] : caps(get(u, 'Service', 'AmbientCapabilities'));
  const bounding = caps(get(u, 'Service', 'CapabilityBoundingSet'));
  const args = [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    '--clear-groups',
    `--bounding-set=-all${bounding.map((c) => `,+${c}`).join('')}`,
  ];
  if (ambient.length > 0)
    args.push(
      `--inh-caps=${ambient.map((c) => `+${c}`).join(',')}`,
      `--ambient-caps=${ambient.map((c) => `+${c}`).join(',')}`,
    );
  if (get(u, 'Service', 'NoNewPrivileges') === 'yes') args.push('--no-new-privs');
  return spawn('setpriv', [...args, ...command], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

function collect(child: ReturnType<typeof spawn>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const canSwitchUser = process.getuid?.() === 0 && spawnSync('setpriv', ['--help']).status === 0;
const needsRoot = canSwitchUser
  ? false
  : 'needs root and setpriv (util-linux) to run as another user with capabilities';

for (const [file, command] of [
  ['deploy/anylat.service', 'run'],
  ['deploy/reflector.service', 'reflector'],
] as const) {
  describe(file, () => {
    const u = unit(file);

    it('uses only known directives, in the right sections', () => {
      for (const [section, entries] of Object.entries(u)) {
        assert.ok(KNOWN[section], `unknown section [${section}]`);
        for (const [key] of entries)
          assert.ok(KNOWN[section]!.includes(key), `[${section}] ${key} is not a directive this test knows`);
      }
      assert.equal(get(u, 'Install', 'WantedBy'), 'multi-user.target');
    });

    it(`runs \`anylat ${command}\` from bin/anylat.js with options it accepts`, async () => {
      const { node, script, args } = execStart(u);
      assert.equal(node, '/usr/bin/node');
      assert.ok(existsSync(script), `${script} does not exist`);
      assert.equal(args[0], command);
      const help = await runAnylat([command, '--help']);
      assert.equal(help.code, 0);
      for (const flag of args.filter((a) => a.startsWith('--')))
        assert.ok(help.stdout.includes(flag), `${flag} is not an option of anylat ${command}`);
    });

    it('restarts on failure but not on a bad config (exit 2), as a dedicated user', () => {
      assert.equal(get(u, 'Service', 'Restart'), 'on-failure');
      assert.equal(get(u, 'Service', 'RestartPreventExitStatus'), '2');
      const user = get(u, 'Service', 'User');
      assert.ok(user && user !== 'root' && user !== '0');
    });

    it('hardening that leaves raw sockets and the V8 JIT working', () => {
      const ambient = caps(get(u, 'Service', 'AmbientCapabilities'));
      const bounding = caps(get(u, 'Service', 'CapabilityBoundingSet'));
      for (const c of ambient) assert.ok(bounding.includes(c), `ambient ${c} is not in CapabilityBoundingSet`);
      assert.notEqual(get(u, 'Service', 'MemoryDenyWriteExecute'), 'yes', 'V8 needs W+X memory');
      const families = (get(u, 'Service', 'RestrictAddressFamilies') ?? '').split(/\s+/);
      for (const f of ['AF_INET', 'AF_INET6', 'AF_UNIX', 'AF_NETLINK'])
        assert.ok(families.includes(f), `RestrictAddressFamilies lacks ${f}`);
    });
  });
}

describe('deploy/anylat.service specifics', () => {
  const u = unit('deploy/anylat.service');

  it('reads the config the image reads and keeps the store where the example puts it', () => {
    const { args } = execStart(u);
    assert.deepEqual(args, ['run', '--config', '/etc/anylat/anylat.yaml']);
    assert.equal(get(u, 'Service', 'StateDirectory'), 'anylat');
    assert.equal(get(u, 'Service', 'WorkingDirectory'), '/var/lib/anylat');
    assert.match(
      readFileSync(join(ROOT, 'anylat.example.yaml'), 'utf8'),
      /^ {2}path: \/var\/lib\/anylat\/anylat\.db$/m,
    );
    assert.deepEqual(caps(get(u, 'Service', 'AmbientCapabilities')), ['net_raw']);
    // The shutdown bounds fit in the stop timeout.
    assert.ok(Number.parseInt(get(u, 'Service', 'TimeoutStopSec')!, 10) >= 5 + 3 + 2);
  });

  it(
    'with its capabilities and NoNewPrivileges, a non-root agent can still ping (and cannot without them)',
    { skip: needsRoot },
    async () => {
      const icmp = [
        'node',
        'bin/anylat.js',
        'compare',
        '127.0.0.1',
        'lo=127.0.0.2',
        '--protocol',
        'icmp',
        '--samples',
        '2',
        '--spacing',
        '20ms',
        '--timeout',
        '1s',
        '--json',
      ];
      const received = (out: string) =>
        (JSON.parse(out) as { paths: Array<{ received: number }> }).paths.map((p) => p.received);
      const withCaps = await collect(asUnit(u, icmp));
      assert.equal(withCaps.code, 0, withCaps.stderr);
      assert.deepEqual(received(withCaps.stdout), [2, 2]);
      const without = await collect(asUnit(u, icmp, { ambient: false }));
      assert.equal(without.code, 0, without.stderr);
      assert.deepEqual(
        received(without.stdout),
        [0, 0],
        'the control: without the ambient capability ping cannot open its socket',
      );
    },
  );
});

/** A UDP port below 1024 free on 127.0.0.1 right now (root binds it in a child to check). */
function freePrivilegedUdpPort(): number {
  for (let p = 700 + Math.floor(Math.random() * 200); p < 1000; p++) {
    const probe = spawnSync(process.execPath, [
      '-e',
      `require('dgram').createSocket('udp4').bind(${p},'127.0.0.1',function(){this.close()}).on('error',()=>process.exit(1))`,
    ]);
    if (probe.status === 0) return p;
  }
  throw new Error('no free UDP port between 700 and 999 on 127.0.0.1');
}

describe('deploy/reflector.service specifics', () => {
  const u = unit('deploy/reflector.service');

  it('takes its options from $REFLECTOR_ARGS', () => {
    assert.deepEqual(execStart(u).args, ['reflector', '$REFLECTOR_ARGS']);
    assert.equal(get(u, 'Service', 'Environment'), 'REFLECTOR_ARGS=');
  });

  it(
    "the image's file capability: a non-root reflector run by a node with cap_net_bind_service=+ep binds a port below 1024 (the plain node cannot)",
    { skip: needsRoot },
    async () => {
      // What the Dockerfile does to the image's node, done to a copy of this machine's.
      const port = freePrivilegedUdpPort();
      const dir = join(ROOT, 'tmp', `node-cap-${process.pid}`);
      mkdirSync(dir, { recursive: true });
      try {
        const node = join(dir, 'node');
        copyFileSync(process.execPath, node);
        chmodSync(dir, 0o755);
        const set = spawnSync('setcap', ['cap_net_bind_service=+ep', node], { encoding: 'utf8' });
        assert.equal(set.status, 0, `setcap (libcap2-bin): ${set.stderr}`);
        assertNobodyCanRead();
        const asNobody = (bin: string) =>
          spawn(
            'setpriv',
            [
              `--reuid=${NOBODY}`,
              `--regid=${NOBODY}`,
              '--clear-groups',
              bin,
              'bin/anylat.js',
              'reflector',
              '--bind',
              '127.0.0.1',
              '--udp-port',
              String(port),
              '--no-tcp',
              '--no-http',
              '--site',
              'image',
            ],
            { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
          );
        const child = asNobody(node);
        const result = collect(child);
        let out = '';
        child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        const deadline = Date.now() + 30_000;
        while (!out.includes('listening') && child.exitCode === null && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        child.kill('SIGTERM');
        const r = await result;
        assert.match(r.stdout, new RegExp(`listening udp +127\\.0\\.0\\.1:${port} stamp site=image`), r.stderr);
        const without = await collect(asNobody(process.execPath));
        assert.notEqual(without.code, 0, 'the control: the plain node must not bind it');
        assert.match(without.stderr, /EACCES|permission/i);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it(
    'with its capabilities, a non-root reflector binds a port below 1024 (and cannot without them)',
    { skip: needsRoot },
    async () => {
      // A privileged port free on loopback right now.
      const port = freePrivilegedUdpPort();
      const args = [
        'node',
        'bin/anylat.js',
        'reflector',
        '--bind',
        '127.0.0.1',
        '--udp-port',
        String(port),
        '--no-tcp',
        '--no-http',
        '--site',
        'cap-test',
      ];
      const child = asUnit(u, args);
      const result = collect(child);
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 15_000;
      while (!out.includes('listening') && child.exitCode === null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGTERM');
      const r = await result;
      assert.match(r.stdout, new RegExp(`listening udp +127\\.0\\.0\\.1:${port} stamp site=cap-test`), r.stderr);
      assert.equal(r.code, 0, r.stderr);
      const without = await collect(asUnit(u, args, { ambient: false }));
      assert.notEqual(without.code, 0, 'the control: without CAP_NET_BIND_SERVICE the bind must fail');
      assert.match(without.stderr, /EACCES|permission/i);
    },
  );
});

// The agent's documentation must name the units' and the image's paths.
describe('docs/agent.md', () => {
  it('names the files and paths the units and the image use', () => {
    const text = readFileSync(join(ROOT, 'docs/agent.md'), 'utf8');
    for (const s of [
      'deploy/anylat.service',
      'deploy/reflector.service',
      '/etc/anylat/anylat.yaml',
      '/etc/anylat/anylat.env',
      '/var/lib/anylat',
      '/opt/anylat',
      'docker build',
    ]) {
      assert.ok(text.includes(s), `docs/agent.md does not mention ${s}`);
    }
  });
});
