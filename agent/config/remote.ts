// A config served over HTTP(S) for a fleet: fetched with the system's CA store (plus Node's own),
// optionally with a bearer token, polled with If-None-Match / If-Modified-Since, and cached beside
// the store after it validated, so an agent restarts with its last good config while the server is
// down. Validation is the file's: the same `path: message` lines, the URL in place of the file name.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { displayUrl, redact } from '../sink/redact.ts';
import { ConfigError, errorMessage } from '../util/errors.ts';
import { Secret } from '../core/secret.ts';
import { configVersion, parseConfig, type LoadOptions } from './load.ts';
import type { AnylatConfig } from './types.ts';

/** `--config` names a URL rather than a file. */
export function isConfigUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

/** Where the last good config is kept: beside the default store (systemd's state directory, else the working directory). */
export function defaultCachePath(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  return resolve(env.STATE_DIRECTORY?.split(':')[0] || cwd, 'anylat.config-cache.json');
}

/** The CA bundles a system keeps, first found wins; SSL_CERT_FILE (OpenSSL's own variable) first. */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
  '/etc/ssl/ca-bundle.pem',
];

let systemCa: string[] | undefined;

/** The trusted CAs: the system's store (where it is found) and Node's bundled Mozilla list. */
export function trustedCas(env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = env.SSL_CERT_FILE;
  if (fromEnv === undefined && systemCa) return systemCa;
  const file = fromEnv ?? SYSTEM_BUNDLES.find((f) => existsSync(f));
  let system: string[] = [];
  if (file) {
    try {
      system = readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    } catch {
      // unreadable: Node's own list still applies
    }
  }
  const cas = [...system, ...rootCertificates];
  if (fromEnv === undefined) systemCa = cas;
  return cas;
}

/** What the poller remembers of the last answer, to ask the server only for something newer. */
export interface Validators {
  etag?: string;
  lastModified?: string;
}

export type FetchResult =
  | { kind: 'new'; text: string; validators: Validators; publishedAtMs?: number }
  | { kind: 'not-modified' }
  | { kind: 'failed'; message: string };

export interface FetchOptions {
  token?: Secret;
  validators?: Validators;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** One GET of the config. Never throws: a failure is a message naming the URL (no credentials). */
export function fetchConfig(url: string, options: FetchOptions = {}): Promise<FetchResult> {
  const shown = displayUrl(url);
  const token = options.token?.reveal();
  const headers = requestHeaders(token, options.validators);
  const clean = (text: string) => redact(text, token);
  return new Promise((done) => {
    let settled = false;
    const finish = (r: FetchResult) => {
      if (settled) return;
      settled = true;
      done(r);
    };
    let req;
    try {
      const u = new URL(url);
      const common = { method: 'GET', headers, timeout: options.timeoutMs ?? 10_000 };
      req =
        u.protocol === 'https:' ? httpsRequest(u, { ...common, ca: trustedCas(options.env) }) : httpRequest(u, common);
    } catch (err) {
      finish({
        kind: 'failed',
        message: `cannot fetch the config from ${shown}: ${clean(errorMessage(err))}`,
      });
      return;
    }
    req.on('timeout', () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 10_000} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code && !err.message.includes(err.code) ? `${err.code} ` : '';
      finish({ kind: 'failed', message: `cannot fetch the config from ${shown}: ${code}${clean(err.message)}` });
    });
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status === 304) {
        res.resume();
        finish({ kind: 'not-modified' });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_CONFIG_BYTES) {
          req.destroy(new Error(`the config is larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MB`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', () => undefined);
      res.on('end', () => finish(answer(status, res, Buffer.concat(chunks).toString('utf8'), shown, clean)));
    });
    req.end();
  });
}

function requestHeaders(token: string | undefined, validators: Validators | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    accept: 'application/yaml, text/yaml, text/plain;q=0.9, */*;q=0.5',
    'user-agent': 'anylat',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  if (validators?.etag) headers['if-none-match'] = validators.etag;
  if (validators?.lastModified) headers['if-modified-since'] = validators.lastModified;
  return headers;
}

/** What a complete answer (other than 304) means: the new config, or why there is none. */
function answer(
  status: number,
  res: IncomingMessage,
  body: string,
  shown: string,
  clean: (text: string) => string,
): FetchResult {
  if (status !== 200) {
    const hint =
      status === 401 || status === 403 ? '; check the token (--config-token-file or ANYLAT_CONFIG_TOKEN)' : '';
    return {
      kind: 'failed',
      message: `the config server at ${shown} answered ${status}${hint}: ${clean(body.slice(0, 200).trim())}`,
    };
  }
  const validators: Validators = {};
  const etag = res.headers.etag;
  const lastModified = res.headers['last-modified'];
  if (etag) validators.etag = etag;
  if (lastModified) validators.lastModified = lastModified;
  const published = lastModified ? Date.parse(lastModified) : Number.NaN;
  return {
    kind: 'new',
    text: body,
    validators,
    ...(Number.isFinite(published) ? { publishedAtMs: published } : {}),
  };
}

/** Validates a fetched config: messages name the URL where a file's name would be. */
export function parseRemoteConfig(
  text: string,
  url: string,
  options: LoadOptions & { publishedAtMs?: number } = {},
): AnylatConfig {
  const { publishedAtMs, ...load } = options;
  return parseConfig(text, displayUrl(url), {
    ...load,
    // Relative paths in a served config (ca_file, token_file) are the agent's, from where it runs.
    baseDir: process.cwd(),
    origin: { kind: 'url', ...(publishedAtMs === undefined ? {} : { publishedAtMs }) },
  });
}

/** The last good config of a URL, as cached. */
export interface CachedConfig {
  url: string;
  text: string;
  validators: Validators;
  publishedAtMs?: number;
  fetchedAt: string;
}

export function readCache(path: string, url: string): CachedConfig | undefined {
  try {
    const c = JSON.parse(readFileSync(path, 'utf8')) as CachedConfig;
    // A cache of another URL is not this config's last good version.
    return c.url === displayUrl(url) && typeof c.text === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the cache atomically (a crash leaves the old one or the new one), readable by the agent's user only. */
export function writeCache(path: string, entry: CachedConfig): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** The bearer token: `--config-token-file`, else $ANYLAT_CONFIG_TOKEN_FILE, else $ANYLAT_CONFIG_TOKEN. */
export function configToken(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Secret | undefined {
  const file = flag ?? env.ANYLAT_CONFIG_TOKEN_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError([
        `${file}: cannot read the config token file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      ]);
    }
    if (text === '') throw new ConfigError([`${file}: the config token file is empty; put the bearer token in it`]);
    return new Secret(text);
  }
  return env.ANYLAT_CONFIG_TOKEN ? new Secret(env.ANYLAT_CONFIG_TOKEN) : undefined;
}

export interface PollerOptions {
  url: string;
  token?: Secret;
  /** 0: fetch at start (and on SIGHUP) only */
  pollMs: number;
  cachePath: string;
  load?: LoadOptions;
  log: (line: string) => void;
}

/**
 * Keeps an agent's config in step with a URL: the first version at start (or the cached one while
 * the server is down), then a poll every `pollMs` and on demand (SIGHUP). A new version goes to
 * `apply` (the agent's reload), which validates it and reports whether it took; a version that
 * took is cached. Polls never overlap and never throw.
 */
export class ConfigPoller {
  private readonly o: PollerOptions;
  private validators: Validators = {};
  private runningVersion: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  private lastFailure: string | undefined;
  private apply: ((load: () => AnylatConfig) => { result: string }) | undefined;

  constructor(options: PollerOptions) {
    this.o = options;
  }

  private parse(text: string, publishedAtMs: number | undefined): AnylatConfig {
    return parseRemoteConfig(text, this.o.url, {
      ...this.o.load,
      ...(publishedAtMs === undefined ? {} : { publishedAtMs }),
    });
  }

  private cache(text: string, validators: Validators, publishedAtMs: number | undefined): void {
    try {
      writeCache(this.o.cachePath, {
        url: displayUrl(this.o.url),
        text,
        validators,
        ...(publishedAtMs === undefined ? {} : { publishedAtMs }),
        fetchedAt: new Date().toISOString(),
      });
    } catch (err) {
      this.o.log(
        `config: cannot cache the config at ${this.o.cachePath}: ${errorMessage(err)}; a restart while ${displayUrl(this.o.url)} is down will not find it`,
      );
    }
  }

  /**
   * The config to start with: the server's when it answers with a valid one, else the cached last
   * good one (logged). Throws ConfigError when there is neither.
   */
  async initial(): Promise<AnylatConfig> {
    const shown = displayUrl(this.o.url);
    const r = await fetchConfig(this.o.url, {
      ...(this.o.token ? { token: this.o.token } : {}),
      env: this.o.load?.env ?? process.env,
    });
    let why: string[];
    if (r.kind === 'new') {
      try {
        const config = this.parse(r.text, r.publishedAtMs);
        this.validators = r.validators;
        this.runningVersion = config.origin.version;
        this.cache(r.text, r.validators, r.publishedAtMs);
        return config;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        // Remember it: the poll does not report the same bad version again.
        this.validators = r.validators;
        why = err.problems;
      }
    } else {
      why = [
        r.kind === 'failed'
          ? r.message
          : `${shown}: the server answered 304 Not Modified to a request without validators`,
      ];
    }
    const cached = readCache(this.o.cachePath, this.o.url);
    if (cached) {
      try {
        const config = this.parse(cached.text, cached.publishedAtMs);
        for (const line of why) this.o.log(`config: ${line}`);
        this.o.log(
          `config: starting with the last good config of ${shown}, version ${config.origin.version}, cached ${cached.fetchedAt} in ${this.o.cachePath}`,
        );
        this.runningVersion = config.origin.version;
        if (r.kind !== 'new') this.validators = cached.validators;
        return config;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        why.push(...err.problems.map((p) => `the cached copy ${this.o.cachePath} no longer validates: ${p}`));
      }
    }
    throw new ConfigError([
      ...why,
      ...(cached ? [] : [`${shown}: no cached copy to start with (${this.o.cachePath})`]),
    ]);
  }

  /** Starts polling; `apply` is the agent's reload. */
  start(apply: (load: () => AnylatConfig) => { result: string }): void {
    this.apply = apply;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.o.pollMs <= 0) return;
    this.timer = setTimeout(() => void this.check().finally(() => this.schedule()), this.o.pollMs);
    this.timer.unref();
  }

  /** One poll now (SIGHUP calls this too); resolves when it is done. */
  check(): Promise<void> {
    this.inFlight ??= this.poll().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async poll(): Promise<void> {
    if (this.stopped || !this.apply) return;
    const r = await fetchConfig(this.o.url, {
      ...(this.o.token ? { token: this.o.token } : {}),
      validators: this.validators,
      env: this.o.load?.env ?? process.env,
    });
    if (this.stopped) return;
    if (r.kind === 'failed') {
      // Said once per kind of failure, and once when it is over: the poll runs every minute.
      if (r.message !== this.lastFailure)
        this.o.log(`config: ${r.message}; keeping version ${this.runningVersion ?? '?'}`);
      this.lastFailure = r.message;
      return;
    }
    if (this.lastFailure !== undefined) this.o.log(`config: ${displayUrl(this.o.url)} answers again`);
    this.lastFailure = undefined;
    if (r.kind === 'not-modified') return;
    this.validators = r.validators;
    // A server without validators sends the same text every time: nothing to reload.
    if (configVersion(r.text) === this.runningVersion) return;
    let version: string | undefined;
    const outcome = this.apply(() => {
      const config = this.parse(r.text, r.publishedAtMs);
      version = config.origin.version;
      return config;
    });
    if (outcome.result === 'failed' || version === undefined) return;
    this.runningVersion = version;
    this.cache(r.text, r.validators, r.publishedAtMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inFlight;
  }
}
