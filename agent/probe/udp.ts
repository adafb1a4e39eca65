// Placeholder until the udp probe lands; replaced by its owner.
import type { ProbeFactory } from './types.ts';

/** Sets up a udp prober for one target. */
export const createUdpProbe: ProbeFactory<'udp'> = () => {
  throw new Error('udp probe not built yet');
};
