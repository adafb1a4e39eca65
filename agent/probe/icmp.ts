// Placeholder until the icmp probe lands; replaced by its owner.
import type { ProbeFactory } from './types.ts';

/** Sets up a icmp prober for one target. */
export const createIcmpProbe: ProbeFactory<'icmp'> = () => {
  throw new Error('icmp probe not built yet');
};
