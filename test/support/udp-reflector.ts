// One UDP-only reflector on 127.0.0.1 and 127.0.0.2 for a whole test file (an anycast and a
// unicast address on loopback), and a scratch folder removed after the file's tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startReflector, type RunningReflector } from '../../agent/reflector/index.ts';
import { freeUdpPort } from './net.ts';

export interface UdpReflectorFixture {
  /** The scratch folder, there from the start. */
  readonly scratch: string;
  /** The reflector's UDP port, set once the file's `before` hooks have run. */
  readonly udpPort: number;
}

/** Registers the file's `before`/`after` hooks; call it at the top level of a test file. */
export function udpReflectorForFile(site: string, scratchPrefix: string): UdpReflectorFixture {
  const scratch = mkdtempSync(join(tmpdir(), scratchPrefix));
  let reflector: RunningReflector | undefined;
  let udpPort = 0;
  before(async () => {
    udpPort = await freeUdpPort();
    reflector = await startReflector({
      site,
      binds: ['127.0.0.1', '127.0.0.2'],
      udp: { port: udpPort },
      tcp: false,
      http: false,
      log: () => {},
    });
  });
  after(async () => {
    await reflector?.close();
    rmSync(scratch, { recursive: true, force: true });
  });
  return {
    scratch,
    get udpPort() {
      return udpPort;
    },
  };
}
