// The one place protocols are listed: a protocol without a probe fails to compile.
import type { Protocol } from '../core/model.ts';
import type { ProbeFactory } from './types.ts';
import { createUdpProbe } from './udp.ts';
import { createTcpProbe } from './tcp.ts';
import { createTlsProbe } from './tls.ts';
import { createHttpProbe } from './http.ts';
import { createIcmpProbe } from './icmp.ts';
import { createDnsProbe } from './dns.ts';
import { createTransferProbe } from './transfer.ts';

/** Probe factories by protocol. */
export const PROBES: { readonly [P in Protocol]: ProbeFactory<P> } = {
  udp: createUdpProbe,
  tcp: createTcpProbe,
  tls: createTlsProbe,
  http: createHttpProbe,
  icmp: createIcmpProbe,
  dns: createDnsProbe,
  transfer: createTransferProbe,
};

export type { Prober, ProbeTarget, ProbeOptionsMap } from './types.ts';
