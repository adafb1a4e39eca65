import { createUdpProbe } from "./udp.js";
import { createTcpProbe } from "./tcp.js";
import { createTlsProbe } from "./tls.js";
import { createHttpProbe } from "./http.js";
import { createIcmpProbe } from "./icmp.js";
import { createDnsProbe } from "./dns.js";
/** Probe factories by protocol. */
export const PROBES = {
    udp: createUdpProbe,
    tcp: createTcpProbe,
    tls: createTlsProbe,
    http: createHttpProbe,
    icmp: createIcmpProbe,
    dns: createDnsProbe,
};
