// Self-signed certificates for tests, made by the `openssl` CLI (the same tool a user would use),
// in a temporary directory removed by `cleanup`.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCert {
  dir: string;
  keyPath: string;
  certPath: string;
  /** PEM private key (EC P-256) */
  key: string;
  /** PEM certificate; self-signed, so it is also the CA to trust */
  cert: string;
  cleanup(): Promise<void>;
}

/**
 * Makes a key and a self-signed certificate valid for `names` (DNS) and `ips` (IP SANs), e.g.
 * `makeSelfSignedCert({ ips: ['127.0.0.1', '::1'], names: ['svc.test'] })`.
 */
export async function makeSelfSignedCert(
  options: { names?: string[]; ips?: string[]; days?: number } = {},
): Promise<TestCert> {
  const names = options.names ?? [];
  const ips = options.ips ?? ['127.0.0.1'];
  for (const ip of ips) if (isIP(ip) === 0) throw new Error(`makeSelfSignedCert: "${ip}" is not an IP address`);
  if (names.length + ips.length === 0) throw new Error('makeSelfSignedCert: give at least one name or IP');
  const san = [...names.map((n) => `DNS:${n}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
  const dir = await mkdtemp(join(tmpdir(), 'anylat-cert-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-nodes',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      String(options.days ?? 2),
      '-subj',
      `/CN=${names[0] ?? ips[0]}`,
      '-addext',
      `subjectAltName=${san}`,
    ]);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(
      `openssl could not make a test certificate (is the openssl CLI installed?): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const [key, cert] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
  return { dir, keyPath, certPath, key, cert, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
