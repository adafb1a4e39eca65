// Suites that need root (network namespaces, TUN devices, another uid) say so and are skipped when
// `npm test` runs as an ordinary user, instead of failing one by one. Under root (CI, `sudo npm
// test`) they always run: the skip exists only for a user who cannot run them anyway.
// test/support/preflight.ts lists them before the run, from the `needsRoot(...)` calls.

/** node:test options: `{ skip: why }` when this process is not root, `{}` under root. */
export function needsRoot(why: string): { skip?: string } {
  if (process.getuid?.() === 0) return {};
  return { skip: `needs root: ${why} (run "sudo npm test" to include it)` };
}
