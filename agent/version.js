import { readFileSync } from 'node:fs';
/** The package version, written into the `agent` heartbeat. */
export const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
