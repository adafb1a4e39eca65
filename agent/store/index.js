// The embedded store: open it, save rounds and heartbeats, drain its outbox, query it.
export { openStore, Store } from "./store.js";
export { DEFAULT_MAX_DEAD_LETTERS, DEFAULT_MAX_OUTBOX_ROWS } from "./retention.js";
export { median, mean } from "./report.js";
export { SCHEMA_VERSION } from "./schema.js";
