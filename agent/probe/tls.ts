// The tls probe: a fresh TCP connection (not a metric here), then the TLS handshake on it, timed
// from the TCP connect callback to `secureConnect`. Nothing is resumed: an OpenSSL client resumes
// only a session it is handed, Node hands it one only through the `session` option, and this probe
// never passes it (nor keeps the tickets servers send). Every sample pays for a full handshake, as
// a new visitor does; test/probe-tls.test.ts checks it against a server that does resume.

import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { X509Certificate } from 'node:crypto';
import type { Attempt, FailureReason, Metric } from '../core/model.ts';
import { AnylatError } from '../util/errors.ts';
import { checkSocketTarget, errorDetail, socketFailureReason } from './tcp.ts';
import type { ProbeFactory } from './types.ts';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

// OpenSSL skips what is not a certificate in a CA bundle without a word, which would surface
// later as every sample failing with "unable to get local issuer certificate".
function checkCaBundle(ca: string | Buffer): void {
  const blocks = ca.toString().match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new Error('no "-----BEGIN CERTIFICATE-----" block found');
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new Error(`certificate ${i + 1} of ${blocks.length} does not parse: ${errorDetail(err)}`);
    }
  });
}

/** Sets up a tls prober for one target. */
export const createTlsProbe: ProbeFactory<'tls'> = (target, options) => {
  checkSocketTarget('tls', target, options);
  if (options.serverName !== undefined && (options.serverName === '' || net.isIP(options.serverName) !== 0)) {
    throw new AnylatError(
      'ANYLAT_PROBE_OPTIONS',
      `tls probe for ${target.endpoint}: serverName must be a host name (SNI carries no IP address), got "${options.serverName}"`,
    );
  }
  // Parsing a CA bundle costs milliseconds: do it once, not per sample.
  let secureContext: tls.SecureContext;
  try {
    if (options.ca !== undefined) checkCaBundle(options.ca);
    secureContext = tls.createSecureContext(options.ca === undefined ? {} : { ca: options.ca });
  } catch (err) {
    throw new AnylatError(
      'ANYLAT_PROBE_OPTIONS',
      `tls probe for ${target.endpoint}: the CA bundle is not usable PEM: ${errorDetail(err)}`,
    );
  }
  const metrics: readonly Metric[] = ['handshake'];
  const inFlight = new Set<() => void>();
  // Connections closing politely after a successful sample: close_notify and FIN, so the server
  // finishes its side of the handshake and logs no aborted connection; destroyed if it dawdles.
  const closing = new Set<tls.TLSSocket>();
  const lingerMs = Math.min(options.timeoutMs, 1_000);
  function closeGently(secure: tls.TLSSocket): void {
    closing.add(secure);
    const timer = setTimeout(() => secure.destroy(), lingerMs);
    timer.unref();
    secure.once('close', () => {
      clearTimeout(timer);
      closing.delete(secure);
    });
    secure.resume();
    secure.end();
  }

  const sample = (_seq: number): Promise<Attempt> =>
    new Promise<Attempt>((resolve) => {
      const values: Partial<Record<Metric, number>> = {};
      let phase: 'connect' | 'handshake' = 'connect';
      let settled = false;
      let secure: tls.TLSSocket | undefined;

      const t0 = performance.now();
      const socket = net.connect(
        { host: target.address, port: options.port, autoSelectFamily: false, noDelay: true },
        onConnect,
      );

      const timer = setTimeout(() => {
        const what = phase === 'connect' ? 'no TCP connection' : 'TLS handshake not finished';
        fail(performance.now(), 'timeout', `${what} within ${options.timeoutMs} ms`);
      }, options.timeoutMs);

      const abort = () => fail(performance.now(), 'error', 'probe closed');
      inFlight.add(abort);

      function settle(attempt: Attempt): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        inFlight.delete(abort);
        if (attempt.ok && secure) {
          closeGently(secure);
        } else {
          secure?.destroy();
          socket.destroy();
        }
        resolve(attempt);
      }

      function fail(t1: number, reason: FailureReason, detail: string): void {
        settle({ ok: false, t0, t1, values, reason, detail });
      }

      function onError(err: Error): void {
        const t1 = performance.now();
        // After TCP is up, anything that is not a socket-level outcome came from TLS itself:
        // certificate checks, alerts, a peer that does not speak TLS.
        const reason = socketFailureReason(err) ?? (phase === 'handshake' ? 'tls' : 'error');
        fail(t1, reason, errorDetail(err));
      }
      socket.on('error', onError);

      function onConnect(): void {
        const tConnected = performance.now();
        phase = 'handshake';
        secure = tls.connect(
          {
            socket,
            secureContext,
            // The identity is checked against the address when no name is given: an IP SAN then.
            host: target.address,
            ...(options.serverName === undefined ? {} : { servername: options.serverName }),
            rejectUnauthorized: options.insecure !== true,
          },
          () => {
            const t1 = performance.now();
            values.handshake = t1 - tConnected;
            // Every callback of the handshake (TLS 1.2 has two flights) is exposed to lag.
            settle({ ok: true, t0, t1, values, lagWindows: { handshake: [tConnected, t1] } });
          },
        );
        secure.on('error', onError);
      }
    });

  return {
    metrics,
    sample,
    close: async () => {
      for (const abort of [...inFlight]) abort();
      for (const secure of closing) secure.destroy();
      return undefined;
    },
  };
};
