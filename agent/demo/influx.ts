// InfluxDB for the demo. The agents live in lab namespaces that reach nothing outside the lab (not
// even this machine's loopback), and the demo opens no path out of them. So each agent only keeps
// its lines in the shared store's outbox (`anylat run --outbox`), and the demo process, in the root
// namespace, runs one ordinary Sink per agent over that store: delivery, acknowledgement, backoff
// and dead letters work exactly as they would in the agent itself.
import { Secret } from '../core/secret.ts';
import { displayUrl, Sink, type InfluxTarget, type SinkStatus } from '../sink/index.ts';
import type { Store } from '../store/index.ts';
import { UsageError } from '../util/errors.ts';

/** The environment variables the demo reads, with what each one means. */
export const INFLUX_ENV = {
  INFLUX_URL: 'InfluxDB base URL, e.g. http://127.0.0.1:8086 (setting it turns the InfluxDB output on)',
  INFLUX_TOKEN: 'API token (InfluxDB 2.x/3.x); "user:password" for 1.x with auth; empty for none',
  INFLUX_ORG: 'organisation (2.x); ignored by 1.x and VictoriaMetrics',
  INFLUX_BUCKET: 'bucket (2.x/3.x) or database[/retention-policy] (1.x); default anylat',
} as const;

/**
 * The InfluxDB target from INFLUX_URL, INFLUX_TOKEN, INFLUX_ORG and INFLUX_BUCKET, or undefined
 * when INFLUX_URL is unset or empty. Throws UsageError (exit 2) for a URL that is not http(s).
 */
export function influxFromEnv(env: NodeJS.ProcessEnv = process.env): InfluxTarget | undefined {
  const url = env.INFLUX_URL?.trim();
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(
      `INFLUX_URL: expected an http:// or https:// URL such as http://127.0.0.1:8086, got "${displayUrl(url)}"`,
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(
      `INFLUX_URL: expected an http:// or https:// URL such as http://127.0.0.1:8086, got "${displayUrl(url)}"`,
    );
  }
  const target: InfluxTarget = {
    url,
    org: env.INFLUX_ORG?.trim() ?? '',
    bucket: env.INFLUX_BUCKET?.trim() || 'anylat',
  };
  const token = env.INFLUX_TOKEN?.trim();
  if (token) target.token = new Secret(token);
  return target;
}

/** One Sink per demo agent, all on the demo's handle of the shared store. */
export class DemoSinks {
  private readonly sinks = new Map<string, Sink>();

  constructor(
    private readonly store: Store,
    private readonly influx: InfluxTarget,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts delivering `agent`'s outbox lines. Idempotent. */
  add(agent: string): void {
    if (this.sinks.has(agent)) return;
    const sink = new Sink({
      store: this.store,
      agent,
      influx: this.influx,
      log: (line) => this.log(`${agent}: ${line}`),
    });
    this.sinks.set(agent, sink);
    sink.start();
  }

  /** Each agent's delivery state (no secrets). */
  status(): Array<{ agent: string } & SinkStatus> {
    return [...this.sinks].map(([agent, sink]) => ({ agent, ...sink.status() }));
  }

  /** Delivers what InfluxDB takes within `withinMs`, then stops; the rest stays in the outbox. */
  async drain(withinMs: number): Promise<{ delivered: number; remaining: number }> {
    const results = await Promise.all([...this.sinks.values()].map((s) => s.drain(withinMs)));
    return {
      delivered: results.reduce((n, r) => n + r.delivered, 0),
      remaining: results.reduce((n, r) => n + r.remaining, 0),
    };
  }
}
