// The reference the benchmarks compare anylat with: iputils `ping` inside the agent's namespace,
// one echo per run (`-c 1 -q`), whose summary line gives the round trip in µs from kernel
// timestamps (`time=` would give 3 significant digits: whole ms from 100 ms up). It runs in this
// (the driver's) process, never in the agent's, so its process spawning cannot disturb the agent.
import { execFile } from 'node:child_process';

export interface PingSample {
  address: string;
  /** Date.now() when the reply was in */
  at: number;
  /** null: no reply */
  rttMs: number | null;
}

const SUMMARY = /^rtt min\/avg\/max\/mdev = ([0-9.]+)\//m;

function pingOnce(netns: string, address: string): Promise<number | null> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', netns, 'ping', '-n', '-q', '-c', '1', '-W', '2', address],
      { timeout: 5000 },
      (_err, stdout) => {
        const m = SUMMARY.exec(String(stdout));
        resolve(m ? Number(m[1]) : null);
      },
    );
  });
}

/** One sequential ping loop per address, `gapMs` between the end of one echo and the next. */
export class PingReference {
  readonly samples: PingSample[] = [];
  private running = false;
  private loops: Array<Promise<void>> = [];

  constructor(
    private readonly netns: string,
    private readonly addresses: readonly string[],
    private readonly gapMs: number,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = this.addresses.map((address, i) => this.loop(address, i * (this.gapMs / this.addresses.length)));
  }

  private async loop(address: string, offsetMs: number): Promise<void> {
    await new Promise((r) => setTimeout(r, offsetMs));
    while (this.running) {
      const rttMs = await pingOnce(this.netns, address);
      this.samples.push({ address, at: Date.now(), rttMs });
      await new Promise((r) => setTimeout(r, this.gapMs));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Round trips of `address` whose replies came in between `from` and `to` (Date.now() ms). */
  between(address: string, from: number, to: number): number[] {
    return this.samples
      .filter((s) => s.address === address && s.at >= from && s.at <= to && s.rttMs !== null)
      .map((s) => s.rttMs!);
  }
}
