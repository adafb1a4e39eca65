// The shape of anylat.yaml (zod) and the rules that span fields: a deadline shorter than the
// interval, a round that fits its deadline, a baseline that names an endpoint, labels that do not
// shadow anylat's own tags. Rules run even when other fields are wrong, so one check lists every
// problem; a rule skips a field that already failed (it has its own message).
import { isIP } from 'node:net';
import { z } from 'zod';
import { PROTOCOLS } from "../core/model.js";
import { QUERY_TYPES } from "../probe/dns-codec.js";
import { MAX_SITE_TLV_BYTES, parseStampKey } from "../core/stamp-codec.js";
import { isReservedLabel, RESERVED_TAGS } from "../core/line-protocol.js";
import { human } from "./human.js";
import { cronInterval, DEFAULT_DEADLINE_SHARE, defaultDeadline } from "../schedule/timing.js";
import { address, bool, cron, duration, fileContents, filePath, headerName, hostName, httpUrl, integer, isName, leaf, listen, name, number, oneOf, optional, port, secretText, show, text, } from "./fields.js";
import { suggest } from "./suggest.js";
/** Values a config gets when it does not say. */
export const DEFAULTS = {
    samples: 20,
    spacingMs: 50,
    timeoutMs: 2_000,
    schedule: '* * * * *',
    terminatesTcp: true,
    baseline: 'nearest',
    udpPort: 862,
    tcpPort: 443,
    tlsPort: 443,
    /** a DNS service's port; the reflector answers on 8053 unless run with --dns-port 53 */
    dnsPort: 53,
    retentionAgeMs: 30 * 86_400_000,
    retentionRows: 1_000_000,
    webListen: { host: '127.0.0.1', port: 8080 },
    /** 9464: the port OpenTelemetry's Prometheus exporter made common for agents */
    metricsListen: { host: '127.0.0.1', port: 9464 },
    storeFile: 'anylat.db',
    maxAnycast: 8,
};
/** Issue parameter that makes a problem point at the key rather than its value. */
export const AT_KEY = { anchor: 'key' };
/** A mapping with known keys: a wrong type names what was expected; each unknown key is a problem of its own. */
function mapping(shape, what) {
    const keys = Object.keys(shape);
    return z
        .looseObject(shape, {
        error: (iss) => iss.code === 'invalid_type'
            ? iss.input === undefined || iss.input === null
                ? `required: expected ${what}`
                : `expected ${what}, got ${show(iss.input)}`
            : undefined,
    })
        .superRefine((v, ctx) => {
        if (typeof v !== 'object' || v === null || Array.isArray(v))
            return;
        for (const k of Object.keys(v)) {
            if (keys.includes(k))
                continue;
            const near = suggest(k, keys);
            ctx.addIssue({
                code: 'custom',
                path: [k],
                params: AT_KEY,
                message: `unknown key "${k}"${near ? `; did you mean "${near}"?` : ''} (expected one of: ${keys.join(', ')})`,
            });
        }
    }, { when: () => true });
}
function list(item, what) {
    return z.array(item, {
        error: (iss) => (iss.input === undefined || iss.input === null ? `required: expected ${what}` : `expected ${what}, got ${show(iss.input)}`),
    });
}
function dictionary(value, what) {
    return z.record(z.string(), value, {
        error: (iss) => iss.code === 'invalid_type' ? (iss.input === undefined || iss.input === null ? `required: expected ${what}` : `expected ${what}, got ${show(iss.input)}`) : undefined,
    });
}
/** A probe entry: `icmp:` with nothing after it means "on, with defaults". */
function probeEntry(schema) {
    return z.preprocess((v) => (v === null ? {} : v), schema.optional());
}
const labelValue = leaf('a label value (text)', (v) => {
    if (typeof v === 'string' && v !== '')
        return v;
    if (typeof v === 'number' || typeof v === 'boolean')
        return String(v);
    return undefined;
});
function probesSchema(baseDir) {
    const pem = fileContents(baseDir, 'the CA file', (buf, path) => {
        if (!buf.toString('utf8').includes('-----BEGIN CERTIFICATE-----'))
            throw new Error(`expected a PEM CA file, but "${path}" holds no "-----BEGIN CERTIFICATE-----"`);
        return buf;
    });
    const stampKey = fileContents(baseDir, 'the STAMP key file', (buf, path) => parseStampKey(buf.toString('utf8'), path));
    return mapping({
        udp: probeEntry(mapping({ port: optional(port), auth_key_file: optional(stampKey), site_tlv_bytes: optional(integer(0, MAX_SITE_TLV_BYTES, 'a size in bytes')) }, 'udp probe settings (port, auth_key_file, site_tlv_bytes) or nothing')),
        tcp: probeEntry(mapping({
            port: optional(port),
            echo: optional(bool),
            connect_clock: optional(oneOf(['kernel', 'monotonic'])),
            echo_clock: optional(oneOf(['kernel', 'monotonic'])),
        }, 'tcp probe settings (port, echo, connect_clock, echo_clock) or nothing')),
        tls: probeEntry(mapping({ port: optional(port), server_name: optional(hostName), insecure: optional(bool), ca_file: optional(pem) }, 'tls probe settings (port, server_name, insecure, ca_file)')),
        http: probeEntry(mapping({
            url: httpUrl,
            site_header: optional(headerName),
            insecure: optional(bool),
            ca_file: optional(pem),
            warm: optional(bool),
            ttfb_clock: optional(oneOf(['kernel', 'monotonic'])),
        }, 'http probe settings (url, site_header, insecure, ca_file, warm, ttfb_clock)')),
        icmp: probeEntry(mapping({}, 'nothing (icmp has no settings)')),
        dns: probeEntry(mapping({
            port: optional(port),
            transport: optional(oneOf(['udp', 'tcp'])),
            qname: optional(hostName),
            qtype: optional(oneOf(QUERY_TYPES)),
            nsid: optional(bool),
        }, 'dns probe settings (port, transport, qname, qtype, nsid) or nothing')),
    }, `a mapping of probes (${PROTOCOLS.join(', ')})`);
}
/** `anycast: 192.0.2.1` or a list of them (Global Accelerator has two static addresses). */
const anycastList = z.preprocess((v) => (typeof v === 'string' || typeof v === 'number' ? [v] : v), list(address, 'an IP address, a host name, or a list of them'));
function roundSettings(baseDir) {
    return {
        probes: optional(probesSchema(baseDir)),
        samples: optional(integer(1, 10_000, 'a number of samples')),
        spacing: optional(duration),
        timeout: optional(duration),
        schedule: optional(cron),
        deadline: optional(duration),
        terminates_tcp: optional(bool),
        max_in_flight: optional(integer(1, 1_024, 'a number of samples in flight')),
    };
}
/** One name or a list of them (an `agents:` entry's `id` or `region`). */
function names(what) {
    return z.preprocess((v) => (typeof v === 'string' ? [v] : v), list(name(what), `${what}, or a list of them`));
}
/** The schema of anylat.yaml; `baseDir` resolves the relative file paths in it. */
export function configSchema(baseDir) {
    const serviceFields = {
        name: name('a service name'),
        anycast: anycastList,
        unicast: dictionary(address, 'a mapping of unicast endpoint names to addresses (e.g. us-east-1: 203.0.113.10)'),
        baseline: optional(text('"nearest" or a unicast endpoint name')),
        ...roundSettings(baseDir),
    };
    const service = mapping(serviceFields, 'a service (a mapping with name, anycast, unicast, probes, ...)');
    // An `agents:` entry's service: a new one (complete) or an override of a shared one by name
    // (only the fields it changes); which of the two is known once the entries are applied.
    const serviceOverride = mapping({ ...serviceFields, anycast: optional(anycastList), unicast: optional(serviceFields.unicast) }, 'a service to add, or the name of a shared service and the settings this agent changes');
    const agentPart = mapping({
        id: optional(names('an agent id')),
        region: optional(names('a region name')),
        labels: optional(dictionary(labelValue, 'a mapping of label names to values')),
        defaults: optional(mapping(roundSettings(baseDir), 'a mapping of settings this agent\'s services inherit')),
        services: optional(list(serviceOverride, 'a list of services to add or override')),
    }, 'a mapping with id and/or region (who it applies to) and labels, defaults, services');
    const schema = mapping({
        agent: mapping({
            id: optional(name('an agent id')),
            region: name('a region name like eu-west-1'),
            lat: optional(number(-90, 90, 'a latitude')),
            lon: optional(number(-180, 180, 'a longitude')),
            labels: optional(dictionary(labelValue, 'a mapping of label names to values')),
        }, 'a mapping with region (and optionally id, lat, lon, labels)'),
        defaults: optional(mapping(roundSettings(baseDir), 'a mapping of settings every service inherits')),
        services: list(service, 'a list of services'),
        store: optional(mapping({
            path: optional(filePath(baseDir)),
            retention: optional(mapping({ age: optional(duration), rows: optional(integer(100, 1_000_000_000, 'a number of rounds')) }, 'a mapping with age and/or rows')),
        }, 'a mapping with path and/or retention')),
        influx: optional(mapping({
            url: httpUrl,
            token: optional(secretText),
            token_file: optional(fileContents(baseDir, 'the token file', (buf, path) => {
                const token = buf.toString('utf8').trim();
                if (token === '')
                    throw new Error(`the token file "${path}" is empty; put the InfluxDB token in it`);
                return token;
            })),
            org: optional(text('an organization name')),
            bucket: text('a bucket name (InfluxDB 1.x: database or database/retention-policy)'),
            set_aside_after: optional(duration),
        }, 'a mapping with url, token or token_file, org, bucket, set_aside_after')),
        web: z.preprocess((v) => (v === null ? {} : v), mapping({ listen: optional(listen) }, 'a mapping with listen').optional()),
        metrics: z.preprocess((v) => (v === null ? {} : v), mapping({ listen: optional(listen) }, 'a mapping with listen (where /metrics is served)').optional()),
        agents: optional(list(agentPart, 'a list of per-agent parts (each with id and/or region)')),
    }, 'a mapping with agent, services and optionally defaults, store, influx, web, metrics, agents');
    return schema.superRefine(crossFieldRules, { when: () => true });
}
function isDict(v) {
    return typeof v === 'object' && v !== null && !Array.isArray(v) && v !== z.NEVER;
}
/** A value that passed its own validation (failed ones are z.NEVER or the raw input of a failed mapping). */
function good(v, test) {
    return v !== undefined && v !== z.NEVER && test(v);
}
const isNum = (x) => typeof x === 'number';
const isStr = (x) => typeof x === 'string';
function pick(svc, defaults, key, i, test, builtin) {
    if (svc[key] !== undefined)
        return good(svc[key], test) ? { value: svc[key], src: { from: 'service', path: ['services', i, key] } } : undefined;
    if (defaults && defaults[key] !== undefined)
        return good(defaults[key], test) ? { value: defaults[key], src: { from: 'defaults', path: ['defaults', key] } } : undefined;
    return { value: builtin, src: { from: 'builtin', path: ['services', i] } };
}
function crossFieldRules(root, ctx) {
    if (!isDict(root))
        return;
    if (isDict(root.agent))
        agentRules(root.agent, ctx);
    if (isDict(root.influx))
        influxRules(root.influx, ctx);
    if (Array.isArray(root.agents)) {
        root.agents.forEach((part, j) => {
            if (isDict(part) && part.id === undefined && part.region === undefined) {
                ctx.addIssue({ code: 'custom', path: ['agents', j], message: 'expected id and/or region: which agents this part applies to' });
            }
            if (isDict(part) && isDict(part.labels))
                agentRules({ labels: part.labels }, ctx, ['agents', j, 'labels']);
        });
    }
    const defaults = isDict(root.defaults) ? root.defaults : undefined;
    if (!Array.isArray(root.services))
        return;
    if (root.services.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['services'], message: 'expected at least one service' });
        return;
    }
    const firstByName = new Map();
    root.services.forEach((svc, i) => {
        if (!isDict(svc))
            return;
        if (good(svc.name, isStr)) {
            const first = firstByName.get(svc.name);
            if (first !== undefined) {
                ctx.addIssue({ code: 'custom', path: ['services', i, 'name'], message: `duplicate service name "${svc.name}" (also services[${first}]); names must be unique` });
            }
            else {
                firstByName.set(svc.name, i);
            }
        }
        serviceRules(svc, defaults, i, ctx);
    });
}
function agentRules(agent, ctx, at = ['agent', 'labels']) {
    if (!isDict(agent.labels))
        return;
    for (const key of Object.keys(agent.labels)) {
        const path = [...at, key];
        if (RESERVED_TAGS.includes(key)) {
            ctx.addIssue({ code: 'custom', path, params: AT_KEY, message: `"${key}" is a tag anylat writes itself (${RESERVED_TAGS.join(', ')}); choose another label name` });
        }
        else if (key.startsWith('_')) {
            ctx.addIssue({ code: 'custom', path, params: AT_KEY, message: `"${key}": names starting with "_" are InfluxDB's own columns; choose another label name` });
        }
        else if (key === 'time') {
            ctx.addIssue({ code: 'custom', path, params: AT_KEY, message: '"time" is InfluxDB\'s timestamp column (a tag named time is dropped); choose another label name' });
        }
        else if (isReservedLabel(key)) {
            ctx.addIssue({ code: 'custom', path, params: AT_KEY, message: `"${key}" is a field anylat writes; a tag with the same name makes queries ambiguous; choose another label name` });
        }
        else if (!/^[A-Za-z][A-Za-z0-9_]{0,62}$/.test(key)) {
            ctx.addIssue({ code: 'custom', path, params: AT_KEY, message: `expected a label name (a letter, then letters, digits, "_"), got "${key}"` });
        }
    }
}
function influxRules(influx, ctx) {
    if (influx.token !== undefined && influx.token_file !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['influx', 'token_file'], params: AT_KEY, message: 'set token or token_file, not both' });
    }
    else if (influx.token === undefined && influx.token_file === undefined) {
        ctx.addIssue({ code: 'custom', path: ['influx'], message: 'required: token or token_file (the InfluxDB API token; InfluxDB 1.x: user:password)' });
    }
}
const isProbes = (x) => isDict(x);
function serviceRules(svc, defaults, i, ctx) {
    const at = (...rest) => ['services', i, ...rest];
    const unicastNames = [];
    if (isDict(svc.unicast)) {
        const names = Object.keys(svc.unicast);
        if (names.length === 0) {
            ctx.addIssue({ code: 'custom', path: at('unicast'), message: 'expected at least one unicast endpoint (name: address); the benefit is measured against them' });
        }
        for (const n of names) {
            if (n === 'anycast' || /^anycast-\d+$/.test(n)) {
                ctx.addIssue({ code: 'custom', path: at('unicast', n), params: AT_KEY, message: `"${n}" is reserved for the anycast address(es); name unicast endpoints after their region, e.g. us-east-1` });
            }
            else if (!isName(n)) {
                ctx.addIssue({ code: 'custom', path: at('unicast', n), params: AT_KEY, message: `expected an endpoint name (letters, digits, "-", "_", "."), got "${n}"` });
            }
            else {
                unicastNames.push(n);
            }
        }
    }
    if (Array.isArray(svc.anycast)) {
        if (svc.anycast.length === 0)
            ctx.addIssue({ code: 'custom', path: at('anycast'), message: 'expected at least one anycast address' });
        if (svc.anycast.length > DEFAULTS.maxAnycast) {
            ctx.addIssue({ code: 'custom', path: at('anycast'), message: `expected at most ${DEFAULTS.maxAnycast} anycast addresses, got ${svc.anycast.length}` });
        }
        const seen = new Map();
        svc.anycast.forEach((a, j) => {
            if (!good(a, isStr))
                return;
            const first = seen.get(a);
            if (first !== undefined)
                ctx.addIssue({ code: 'custom', path: at('anycast', j), message: `"${a}" is listed twice (also anycast[${first}])` });
            else
                seen.set(a, j);
        });
    }
    if (good(svc.baseline, isStr) && svc.baseline !== 'nearest' && isDict(svc.unicast) && !unicastNames.includes(svc.baseline)) {
        const near = suggest(svc.baseline, unicastNames);
        ctx.addIssue({
            code: 'custom',
            path: at('baseline'),
            message: `expected "nearest" or a unicast endpoint name (${unicastNames.join(', ') || 'none defined'}), got "${svc.baseline}"${near ? `; did you mean "${near}"?` : ''}`,
        });
    }
    const probes = pick(svc, defaults, 'probes', i, isProbes, undefined);
    if (probes && probes.value === undefined) {
        ctx.addIssue({ code: 'custom', path: at(), message: `expected probes (here or in defaults): at least one of ${PROTOCOLS.join(', ')}` });
    }
    else if (probes?.value && Object.keys(probes.value).length === 0) {
        ctx.addIssue({ code: 'custom', path: probes.src.path, message: `expected at least one probe: ${PROTOCOLS.join(', ')}` });
    }
    else if (probes?.value && isDict(probes.value.tls)) {
        const tls = probes.value.tls;
        if (tls.server_name === undefined && tls.insecure !== true) {
            ctx.addIssue({
                code: 'custom',
                path: [...probes.src.path, 'tls'],
                params: AT_KEY,
                message: 'set server_name (the name the certificate is for, sent as SNI), or insecure: true to skip certificate checks',
            });
        }
    }
    timingRules(svc, defaults, i, ctx);
}
function timingRules(svc, defaults, i, ctx) {
    const schedule = pick(svc, defaults, 'schedule', i, isStr, DEFAULTS.schedule);
    const samples = pick(svc, defaults, 'samples', i, isNum, DEFAULTS.samples);
    const spacing = pick(svc, defaults, 'spacing', i, isNum, DEFAULTS.spacingMs);
    const timeout = pick(svc, defaults, 'timeout', i, isNum, DEFAULTS.timeoutMs);
    const deadline = pick(svc, defaults, 'deadline', i, isNum, undefined);
    if (!schedule?.value)
        return;
    const interval = cronInterval(schedule.value);
    const every = `the schedule "${schedule.value}" (fires every ${human(interval)} at the shortest)`;
    if (deadline?.value !== undefined && deadline.value >= interval) {
        ctx.addIssue({
            code: 'custom',
            path: deadline.src.path,
            message: `deadline ${human(deadline.value)} must be shorter than the interval of ${every}, so a round ends before the next is due`,
        });
        return;
    }
    if (!deadline || samples?.value === undefined || spacing?.value === undefined || timeout?.value === undefined)
        return;
    const deadlineMs = deadline.value ?? defaultDeadline(interval);
    const isName = (a) => typeof a === 'string' && isIP(a) === 0;
    const names = (Array.isArray(svc.anycast) && svc.anycast.some(isName)) || (isDict(svc.unicast) && Object.values(svc.unicast).some(isName));
    const needs = (samples.value - 1) * spacing.value + timeout.value + (names ? timeout.value : 0);
    if (needs <= deadlineMs)
        return;
    const formula = `(samples - 1) × spacing + timeout = ${samples.value - 1} × ${human(spacing.value)} + ${human(timeout.value)}${names ? ` + ${human(timeout.value)} to resolve host names` : ''} = ${human(needs)}`;
    const limit = deadline.value !== undefined
        ? `its deadline ${human(deadlineMs)}`
        : `its deadline ${human(deadlineMs)} (by default ${Math.round(DEFAULT_DEADLINE_SHARE * 100)}% of the ${human(interval)} interval of "${schedule.value}")`;
    // Point at the setting most likely to be tuned that the service itself sets.
    const where = ['deadline', 'schedule', 'timeout', 'spacing', 'samples'].find((k) => svc[k] !== undefined);
    ctx.addIssue({
        code: 'custom',
        path: where ? ['services', i, where] : ['services', i],
        message: `a round may take up to ${formula}, longer than ${limit}; lower samples, spacing or timeout, or schedule rounds less often`,
    });
}
