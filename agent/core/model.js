// The vocabulary of anylat, declared once. Probes, rounds, the store, the sink, the dashboards and
// the alert rules all import these names instead of spelling them again (DESIGN.md, "Concepts").
/** Protocols a probe can speak. The probe registry is keyed by this union. */
export const PROTOCOLS = ['udp', 'tcp', 'tls', 'http', 'icmp', 'dns'];
/** What a probe times. */
export const METRICS = ['rtt', 'connect', 'handshake', 'dns', 'ttfb', 'total', 'warm', 'tls', 'query'];
/** Metrics each protocol can report, in display order. */
export const PROTOCOL_METRICS = {
    udp: ['rtt'],
    tcp: ['connect', 'rtt'],
    tls: ['handshake'],
    http: ['dns', 'connect', 'tls', 'ttfb', 'total', 'warm'],
    icmp: ['rtt'],
    dns: ['query'],
};
/** Metrics the accelerator answers itself when it terminates TCP. */
export const EDGE_TERMINATED = [
    ['tcp', 'connect'],
    ['http', 'connect'],
];
/** ICMP is answered by whoever holds the address: the edge, never the origin. */
export function scopeOf(protocol, metric, terminatesTcp) {
    if (protocol === 'icmp')
        return 'edge';
    if (terminatesTcp && EDGE_TERMINATED.some(([p, m]) => p === protocol && m === metric))
        return 'edge';
    return 'end_to_end';
}
/** Why a sample failed. Low-cardinality: these become counts, never tags. */
export const FAILURE_REASONS = [
    'timeout',
    'refused',
    'unreachable',
    'reset',
    'dns',
    'tls',
    'http_status',
    'protocol',
    'error',
];
export const EVENT_TYPES = ['site_change', 'path_down', 'path_up'];
