// Placeholder until the tls probe lands; replaced by its owner.
import type { ProbeFactory } from './types.ts';

/** Sets up a tls prober for one target. */
export const createTlsProbe: ProbeFactory<'tls'> = () => {
  throw new Error('tls probe not built yet');
};
