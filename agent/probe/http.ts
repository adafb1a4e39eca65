// Placeholder until the http probe lands; replaced by its owner.
import type { ProbeFactory } from './types.ts';

/** Sets up a http prober for one target. */
export const createHttpProbe: ProbeFactory<'http'> = () => {
  throw new Error('http probe not built yet');
};
