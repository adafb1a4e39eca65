#!/usr/bin/env node
// The agent is TypeScript, compiled to dist/ by `npm run build` (which `npm install` runs as
// `prepare`). This runs dist/ with no loader; only in a checkout, while a source is newer than the
// build (or with ANYLAT_SOURCE=1), it runs the TypeScript through tsx's loader instead, so a
// checkout runs as it is. See bin/compiled.js.
import { compiledIsFresh, isCheckout } from './compiled.js';

if (compiledIsFresh()) {
  await import('../dist/agent/cli.js');
} else if (isCheckout()) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../agent/cli.ts');
} else {
  console.error(
    'anylat: the compiled agent (dist/agent/cli.js) is missing and there are no sources to run; reinstall the package',
  );
  process.exit(1);
}
