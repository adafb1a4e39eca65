// Placeholder until this command lands; replaced by its owner.
import { AnylatError } from '../util/errors.ts';

export async function run(_argv: string[]): Promise<number> {
  throw new AnylatError('ANYLAT_UNAVAILABLE', 'run: not available in this build yet');
}
