// The agent side of bench/accuracy.ts, run inside the lab's agent namespace: anylat's own round
// engine (runRound, the probes, the lag monitor that flags samples) measuring the bench origins,
// every sample reported with its flag through RoundDeps.onSample. On command it also carries a
// background load of many concurrent paths in the same process ("the agent is busy").
import { performance } from 'node:perf_hooks';
import { PROBES } from "../agent/probe/index.js";
import { ECHO_FALLBACKS } from "../agent/net/tcp-info.js";
import { tcpProber } from "../agent/probe/tcp.js";
import { runRound } from "../agent/round/run-round.js";
import { LagMonitor } from "../agent/util/lag.js";
import { serveCommands } from "./lib/child.js";
import { SAMPLE_METRICS } from "./lib/accuracy-protocol.js";
const TIMEOUT_MS = 2000;
const lag = new LagMonitor().start();
let setup;
// The measured rounds' tcp probers, kept so the phase can say how their echoes were timed.
let measuredTcp = [];
const measuredProbes = {
    ...PROBES,
    tcp: (target, options) => {
        const p = tcpProber(target, options);
        measuredTcp.push(p);
        return p;
    },
};
function echoTimingOf(probers) {
    const out = {
        kernel: 0,
        monotonic: 0,
        fallbacks: Object.fromEntries(ECHO_FALLBACKS.map((f) => [f, 0])),
        turnaround: { subtracted: 0, unknown: 0, rejected: 0, unreported: 0 },
    };
    for (const p of probers) {
        const t = p.echoTiming();
        out.kernel += t.kernel;
        out.monotonic += t.monotonic;
        for (const f of ECHO_FALLBACKS)
            out.fallbacks[f] += t.fallbacks[f];
        for (const k of Object.keys(out.turnaround))
            out.turnaround[k] += t.turnaround[k];
    }
    return out;
}
function endpoints(targets) {
    return targets.map((t) => ({ name: t.name, kind: 'unicast', host: t.address }));
}
function spec(service, protocols, samples, spacingMs, signal) {
    const s = { service, agent: { id: 'bench', region: 'bench' }, endpoints: endpoints(setup.targets), protocols, samples, spacingMs, timeoutMs: TIMEOUT_MS, terminatesTcp: false, lag };
    if (signal)
        s.signal = signal;
    return s;
}
/** Runs rounds of `s` back to back until `until` (performance.now) leaves no room for another. */
async function loopRounds(make, until, onSample, signal, probes) {
    for (;;) {
        const s = make();
        // The last round may run over by its slowest sample's round trip.
        const length = s.samples * s.spacingMs;
        if (signal?.aborted || performance.now() + length > until)
            return;
        try {
            await runRound(s, probes ? { onSample, probes } : { onSample });
        }
        catch (err) {
            if (signal?.aborted)
                return;
            throw err;
        }
    }
}
async function runPhase(cmd) {
    const su = setup;
    const records = [];
    const failures = {};
    const record = (row, s, metric) => {
        const value = s.attempt.values[metric];
        if (value === undefined) {
            if (!s.attempt.ok)
                failures[row] = (failures[row] ?? 0) + 1;
            return;
        }
        const kernel = s.attempt.lagWindows !== undefined && s.attempt.lagWindows[metric] === undefined;
        records.push([SAMPLE_METRICS.indexOf(row), s.endpoint, Math.round(value * 1000) / 1000, s.flaggedMetrics.includes(metric) ? 1 : 0, kernel ? 1 : 0]);
    };
    // Background paths first, spread over one spacing so they do not start in one burst.
    const busyCtl = new AbortController();
    const busy = { samples: 0, failures: 0, reasons: {} };
    const services = Math.ceil(cmd.busyPaths / (2 * su.targets.length));
    const busyLoops = [];
    const busySpacing = cmd.busyRatePerPath > 0 ? 1000 / cmd.busyRatePerPath : 1000;
    for (let i = 0; i < services; i++) {
        busyLoops.push((async () => {
            await new Promise((r) => setTimeout(r, (i / services) * busySpacing));
            // Their own reflectors: the measured ones' event loops are not the load's.
            const protocols = { udp: { port: su.loadPorts.udp }, tcp: { port: su.loadPorts.tcp, echo: true } };
            await loopRounds(() => spec(`busy-${i}`, protocols, 10, busySpacing, busyCtl.signal), Number.POSITIVE_INFINITY, (s) => {
                if (s.attempt.ok)
                    busy.samples++;
                else {
                    busy.failures++;
                    const why = `${s.protocol} ${s.attempt.reason}`;
                    busy.reasons[why] = (busy.reasons[why] ?? 0) + 1;
                }
            }, busyCtl.signal);
        })());
    }
    if (services > 0)
        await new Promise((r) => setTimeout(r, busySpacing * 2));
    lag.takeP99();
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    const startedAt = Date.now();
    const busyAtStart = busy.samples;
    const until = t0 + cmd.durationMs;
    measuredTcp = [];
    await Promise.all([
        loopRounds(() => spec('measured', { udp: { port: su.ports.udp }, tcp: { port: su.ports.tcp, echo: true }, http: { url: `http://bench.anylat.test:${su.ports.http}/`, warm: false }, icmp: {}, dns: { port: su.dnsPort } }, su.samples, su.spacingMs), until, (s) => {
            if (s.protocol === 'udp')
                record('udp rtt', s, 'rtt');
            else if (s.protocol === 'tcp') {
                record('tcp connect (kernel)', s, 'connect');
                record('tcp rtt (echo)', s, 'rtt');
            }
            else if (s.protocol === 'http')
                record('http ttfb', s, 'ttfb');
            else if (s.protocol === 'icmp')
                record('icmp rtt', s, 'rtt');
            else if (s.protocol === 'dns')
                record('dns query', s, 'query');
        }, undefined, measuredProbes),
        loopRounds(() => spec('measured-monotonic', {
            tcp: { port: su.ports.tcp, echo: true, connectClock: 'monotonic', echoClock: 'monotonic' },
            http: { url: `http://bench.anylat.test:${su.monotonicHttpPort}/`, warm: false, ttfbClock: 'monotonic' },
        }, su.samples, su.spacingMs), until, (s) => {
            if (s.protocol === 'http') {
                record('http ttfb (monotonic)', s, 'ttfb');
                return;
            }
            record('tcp connect (monotonic)', s, 'connect');
            record('tcp rtt (echo, monotonic clock)', s, 'rtt');
        }),
    ]);
    const elapsed = performance.now() - t0;
    const endedAt = Date.now();
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    const lagP99Ms = lag.takeP99();
    const busySamples = busy.samples - busyAtStart;
    busyCtl.abort();
    await Promise.all(busyLoops);
    return {
        phase: cmd.phase,
        startedAt,
        endedAt,
        records,
        failures,
        echoTiming: echoTimingOf(measuredTcp),
        busy: { paths: services * 2 * su.targets.length, samples: busySamples, failures: busy.failures, failureReasons: busy.reasons, samplesPerSecond: Math.round((busySamples / elapsed) * 1000) },
        cpuPct: Math.round(((cpu.user + cpu.system) / 1000 / elapsed) * 1000) / 10,
        eventLoopUtilization: Math.round(elu.utilization * 1000) / 1000,
        lagP99Ms: Math.round(lagP99Ms * 1000) / 1000,
    };
}
serveCommands(async (command) => {
    if ('setup' in command) {
        setup = command.setup;
        return { ok: true };
    }
    return runPhase(command);
});
