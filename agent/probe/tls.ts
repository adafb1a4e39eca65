// The tls probe: a fresh TCP connection (not a metric here), then the TLS handshake on it, timed
// from the TCP connect callback to `secureConnect`. Nothing is resumed: an OpenSSL client resumes
// only a session it is handed, Node hands it one only through the `session` option, and this probe
// never passes it (nor keeps the tickets servers send). Every sample pays for a full handshake, as
// a new visitor does; test/probe-tls.test.ts checks it against a server that does resume.

import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { X509Certificate } from 'node:crypto';
import type { Attempt, Metric } from '../core/model.ts';
import { AnylatError } from '../util/errors.ts';
import { errorDetail, failureReason } from './outcome.ts';
import { SampleRuns } from './sample.ts';
import { checkSocketTarget } from './tcp.ts';
import type { ProbeFactory, ProbeTarget, TlsProbeOptions } from './types.ts';

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
  const setup: TlsSetup = { target, options, secureContext: secureContextOf(target, options), closing: new Set() };
  const runs = new SampleRuns('tls');
  return {
    metrics: ['handshake'],
    sample: (_seq, signal) => sampleTls(setup, runs, signal),
    close: async () => {
      runs.close();
      for (const secure of setup.closing) secure.destroy();
      return undefined;
    },
  };
};

/** What every sample of one tls prober shares. */
interface TlsSetup {
  target: ProbeTarget;
  options: TlsProbeOptions;
  secureContext: tls.SecureContext;
  /** connections closing politely after a successful sample */
  closing: Set<tls.TLSSocket>;
}

// Parsing a CA bundle costs milliseconds: do it once, not per sample.
function secureContextOf(target: ProbeTarget, options: TlsProbeOptions): tls.SecureContext {
  try {
    if (options.ca !== undefined) checkCaBundle(options.ca);
    return tls.createSecureContext(options.ca === undefined ? {} : { ca: options.ca });
  } catch (err) {
    throw new AnylatError(
      'ANYLAT_PROBE_OPTIONS',
      `tls probe for ${target.endpoint}: the CA bundle is not usable PEM: ${errorDetail(err)}`,
    );
  }
}

// A connection closing politely after a successful sample: close_notify and FIN, so the server
// finishes its side of the handshake and logs no aborted connection; destroyed if it dawdles.
function closeGently(setup: TlsSetup, secure: tls.TLSSocket): void {
  setup.closing.add(secure);
  const timer = setTimeout(() => secure.destroy(), Math.min(setup.options.timeoutMs, 1_000));
  timer.unref();
  secure.once('close', () => {
    clearTimeout(timer);
    setup.closing.delete(secure);
  });
  secure.resume();
  secure.end();
}

/** One sample: a fresh TCP connection (not timed), then the TLS handshake on it, timed. */
function sampleTls(setup: TlsSetup, runs: SampleRuns, signal: AbortSignal | undefined): Promise<Attempt> {
  const { target, options } = setup;
  let phase: 'connect' | 'handshake' = 'connect';
  const timeoutDetail = () =>
    `${phase === 'connect' ? 'no TCP connection' : 'TLS handshake not finished'} within ${options.timeoutMs} ms`;
  return runs.run({ timeoutMs: options.timeoutMs, timeoutDetail }, signal, (run) => {
    const values: Partial<Record<Metric, number>> = {};
    let secure: tls.TLSSocket | undefined;
    let handshook = false;
    run.onFailure((failed) => ({ ...failed, values }));
    const onError = (err: Error) => {
      // After TCP is up, anything that is not a socket-level outcome came from TLS itself:
      // certificate checks, alerts, a peer that does not speak TLS.
      run.fail(failureReason(err, phase === 'handshake' ? 'tls' : 'error'), errorDetail(err));
    };
    run.t0 = performance.now();
    const socket = net.connect(
      { host: target.address, port: options.port, autoSelectFamily: false, noDelay: true },
      () => {
        const tConnected = performance.now();
        phase = 'handshake';
        secure = tls.connect(
          {
            socket,
            secureContext: setup.secureContext,
            // The identity is checked against the address when no name is given: an IP SAN then.
            host: target.address,
            ...(options.serverName === undefined ? {} : { servername: options.serverName }),
            rejectUnauthorized: options.insecure !== true,
          },
          () => {
            const t1 = performance.now();
            values.handshake = t1 - tConnected;
            handshook = true;
            // Every callback of the handshake (TLS 1.2 has two flights) is exposed to lag.
            run.settle({ ok: true, t0: run.t0, t1, values, lagWindows: { handshake: [tConnected, t1] } });
          },
        );
        secure.on('error', onError);
      },
    );
    socket.on('error', onError);
    run.defer(() => {
      if (handshook && secure) return closeGently(setup, secure);
      secure?.destroy();
      socket.destroy();
    });
  });
}
