// ICMP echo through the system `ping` (via ping-lite). The value is the round trip ping prints (its
// summary's µs figure, else `time=`), which iputils takes from kernel receive timestamps; the child process's spawn and exit times never
// enter it.
//
// Lag flagging: a successful echo reports t0 = t1 = the instant its result reached us. The value was
// timed by another process and the kernel, so our event loop's lag cannot be in it, while spawn()
// itself stalls the loop for 1-14 ms (fork/exec runs on the main thread): bracketing the call would
// flag every ICMP sample as lagged and keep all of them out of the statistics.
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { EnvironmentError } from "../util/errors.js";
/** Where ping-lite runs ping from on Linux; it checks this path itself when constructed. */
export const DEFAULT_PING_PATH = '/bin/ping';
/** How long past `timeoutMs` a ping that ignores `-W` may run before it is killed. */
const KILL_GRACE_MS = 1000;
const PingLite = createRequire(import.meta.url)('ping-lite');
/** iputils' `rtt min/avg/max/mdev = 0.137/…`, BusyBox's `round-trip min/avg/max = …`: min, in µs resolution. */
const SUMMARY = /^(?:rtt|round-trip) min\/avg\/max(?:\/[a-z]+)? = ([0-9]+\.[0-9]+)\//m;
/** `-W` takes seconds; iputils accepts fractions, and rejects 0. */
function waitSeconds(timeoutMs) {
    return String(Math.max(0.001, Math.round(timeoutMs) / 1000));
}
function firstLine(text) {
    return text.trim().split('\n')[0].trim();
}
function checkBinary(path) {
    try {
        accessSync(path, constants.X_OK);
    }
    catch {
        throw new EnvironmentError('ANYLAT_NO_PING', `icmp probe: no executable ping at ${path}. Install it (Debian/Ubuntu: apt-get install iputils-ping), ` +
            `or leave icmp out of --protocol.`);
    }
}
/**
 * Sets up an ICMP echo prober for one target. Throws `EnvironmentError` (`ANYLAT_NO_PING`) when the
 * ping binary is missing.
 */
export const createIcmpProbe = ((target, options) => {
    const pingPath = options.pingPath ?? DEFAULT_PING_PATH;
    checkBinary(pingPath);
    const args = ['-n', '-c', '1', '-W', waitSeconds(options.timeoutMs), target.address];
    const running = new Set();
    const sample = (_seq) => new Promise((resolve) => {
        const t0 = performance.now();
        let settled = false;
        let guard;
        let pinger;
        const finish = (attempt) => {
            if (settled)
                return;
            settled = true;
            if (guard)
                clearTimeout(guard);
            if (pinger)
                running.delete(pinger);
            resolve(attempt);
        };
        try {
            // One instance per sample: ping-lite keeps the child on the instance, so concurrent sends
            // on a shared one would read each other's output.
            pinger = new PingLite(target.address, { args });
            pinger._bin = pingPath;
        }
        catch (err) {
            finish({ ok: false, t0, t1: performance.now(), values: {}, reason: 'error', detail: err.message });
            return;
        }
        const p = pinger;
        running.add(p);
        guard = setTimeout(() => {
            p._ping?.kill('SIGKILL');
            finish({ ok: false, t0, t1: performance.now(), values: {}, reason: 'timeout', detail: 'ping did not exit' });
        }, options.timeoutMs + KILL_GRACE_MS);
        p.send((err, ms) => {
            const t1 = performance.now();
            const stdout = p._ping?.stdout?._stdout ?? '';
            // ping-lite treats any stderr as failure, but ping warns there too (e.g. about the source
            // address) while the echo succeeds: the reply line decides.
            const replied = /\btime=([0-9.]+) ms/.exec(stdout);
            if (err && !replied) {
                const text = err.message;
                // `connect: Network is unreachable`, `connect: No route to host`: refused by our own stack.
                const reason = /unreachable|no route to host/i.test(text) ? 'unreachable' : 'error';
                finish({ ok: false, t0, t1, values: {}, reason, detail: firstLine(text) || 'ping failed' });
                return;
            }
            // iputils prints time= with 3 significant digits (whole ms from 100 ms up, 0.1 ms from 10 ms),
            // but its summary line with 3 decimals: with one echo sent, its min is that echo's time.
            const summary = replied ? SUMMARY.exec(stdout) : null;
            const rtt = summary ? Number(summary[1]) : err && replied ? Number(replied[1]) : ms;
            if (typeof rtt === 'number' && Number.isFinite(rtt)) {
                // Timed by ping's process from kernel timestamps: no lag of ours is in it.
                finish({ ok: true, t0: t1, t1, values: { rtt }, lagWindows: {} });
                return;
            }
            const icmpError = /^From .*?(Destination .*Unreachable|Time to live exceeded|Packet filtered)/im.exec(stdout);
            if (icmpError) {
                finish({ ok: false, t0, t1, values: {}, reason: 'unreachable', detail: icmpError[1] });
                return;
            }
            finish({ ok: false, t0, t1, values: {}, reason: 'timeout', detail: `no echo reply within ${options.timeoutMs} ms` });
        });
    });
    return {
        metrics: ['rtt'],
        sample,
        async close() {
            for (const p of running)
                p._ping?.kill('SIGKILL');
            running.clear();
            return undefined;
        },
    };
});
