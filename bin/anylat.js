#!/usr/bin/env node
// The agent is TypeScript. After `npm install` (which runs `npm run build`) it runs compiled, with
// no loader; while a source is newer than the build (or with ANYLAT_SOURCE=1) it runs the
// TypeScript through tsx's loader instead, so a checkout runs as it is. See bin/compiled.js.
import { compiledIsFresh } from './compiled.js';

if (compiledIsFresh()) {
  await import('../agent/cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../agent/cli.ts');
}
