// The reference for HTTP time to first byte: what the wire saw. `ping` has no server in its round
// trip, so it cannot tell how close anylat's ttfb is to the truth; a packet capture can. tcpdump in
// the agent's namespace (kernel timestamps, taken where the packets cross the agent's interfaces)
// records, for each connection to the measured HTTP port, when the request's first data segment
// left and when the response's first data segment arrived: that difference is the connection's
// true ttfb (network round trip plus the server's time to answer), which anylat's ttfb should
// equal. Runs in the driver's process, like the ping reference.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { AnylatError } from '../../agent/util/errors.ts';

export interface WireTtfb {
  /** the server's address */
  address: string;
  /** Date.now() scale: when the response's first data segment arrived */
  at: number;
  ttfbMs: number;
}

// `-q` lines, with the interface and direction that `-i any` adds (tcpdump >= 4.99):
// "1764100000.123456 tun0  Out IP 10.77.0.2.41234 > 10.78.0.1.9080: tcp 41"
const LINE =
  /^(\d+)\.(\d{6}) (?:\S+\s+(?:In|Out|M|B|P|U)\s+)?IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): tcp (\d+)/;

/** Says what to install when tcpdump is missing. */
export function assertTcpdump(): void {
  try {
    execFileSync('tcpdump', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new AnylatError(
      'ANYLAT_BENCH_TCPDUMP',
      'bench:accuracy compares HTTP ttfb with a packet capture: install tcpdump (apt-get install tcpdump)',
    );
  }
}

export class WireTtfbReference {
  readonly samples: WireTtfb[] = [];
  private child: ChildProcess | undefined;
  /** connection (client addr:port) -> when its request left, in µs since the epoch */
  private readonly requests = new Map<string, number>();
  private stderr = '';

  constructor(
    private readonly netns: string,
    private readonly port: number,
  ) {}

  /** Starts capturing; resolves once tcpdump listens. */
  async start(): Promise<void> {
    // Data-bearing IPv4 TCP segments to or from the port: IP total length − IP header − TCP header.
    const filter = `tcp port ${this.port} and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)`;
    const child = spawn(
      'ip',
      ['netns', 'exec', this.netns, 'tcpdump', '-i', 'any', '-n', '-q', '-tt', '-l', '--immediate-mode', filter],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcpdump did not start within 10 s: ${this.stderr}`)), 10_000);
      child.stderr!.on('data', (d: Buffer) => {
        this.stderr += d.toString();
        if (/listening on/.test(this.stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`tcpdump exited (${code}): ${this.stderr}`));
      });
    });
  }

  private onLine(line: string): void {
    const m = LINE.exec(line);
    if (!m) return;
    const us = Number(m[1]) * 1e6 + Number(m[2]);
    const [srcAddr, srcPort, dstAddr, dstPort] = [m[3]!, Number(m[4]), m[5]!, Number(m[6])];
    if (dstPort === this.port) {
      // The request: only a connection's first data segment starts its ttfb.
      const key = `${srcAddr}:${srcPort}>${dstAddr}`;
      if (!this.requests.has(key)) this.requests.set(key, us);
    } else if (srcPort === this.port) {
      const key = `${dstAddr}:${dstPort}>${srcAddr}`;
      const sent = this.requests.get(key);
      if (sent === undefined || sent < 0) return;
      this.samples.push({ address: srcAddr, at: us / 1000, ttfbMs: (us - sent) / 1000 });
      // Later segments of the response (and a later request on this connection) are not a ttfb.
      this.requests.set(key, -1);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await gone;
  }

  /** ttfb of `address` whose responses came in between `from` and `to` (Date.now() ms). */
  between(address: string, from: number, to: number): number[] {
    return this.samples.filter((s) => s.address === address && s.at >= from && s.at <= to).map((s) => s.ttfbMs);
  }
}
