// `anylat demo` with its dashboard's address taken: the message names the demo's own option
// (--web ADDR), not the config key an agent would use, and nothing of the demo is left running.
// The dashboard starts before the lab, so this needs neither root nor a lab.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemo } from '../agent/demo/demo.ts';
import { AnylatError } from '../agent/util/errors.ts';

let scratch: string;
let taken: net.Server;
let port: number;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'anylat-demo-web-'));
  taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  port = (taken.address() as net.AddressInfo).port;
});

after(async () => {
  await new Promise<void>((resolve) => taken.close(() => resolve()));
  rmSync(scratch, { recursive: true, force: true });
});

test('a taken dashboard address: exit 2, the address, and "--web ADDR" to pick another', async () => {
  const lines: string[] = [];
  await assert.rejects(
    () =>
      startDemo({
        dir: join(scratch, 'demo'),
        storePath: join(scratch, 'demo.db'),
        web: { host: '127.0.0.1', port },
        log: (l) => lines.push(l),
      }),
    (err: unknown) => {
      assert.ok(err instanceof AnylatError, String(err));
      assert.equal(err.code, 'ANYLAT_BIND');
      assert.equal(err.exitCode, 2);
      assert.match(
        err.message,
        new RegExp(
          `cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use \\(EADDRINUSE\\); give the demo another one with --web ADDR \\(e\\.g\\. --web 127\\.0\\.0\\.1:8081\\)$`,
        ),
      );
      assert.doesNotMatch(err.message, /web\.listen/);
      return true;
    },
  );
  assert.ok(
    lines.some((l) => /could not start/.test(l)),
    lines.join('\n'),
  );
});
