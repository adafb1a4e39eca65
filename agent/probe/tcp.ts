// Placeholder until the tcp probe lands; replaced by its owner.
import type { ProbeFactory } from './types.ts';

/** Sets up a tcp prober for one target. */
export const createTcpProbe: ProbeFactory<'tcp'> = () => {
  throw new Error('tcp probe not built yet');
};
