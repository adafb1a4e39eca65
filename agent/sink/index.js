// The InfluxDB sink: drains the store's outbox, acknowledges only what InfluxDB accepted.
export { Sink } from "./sink.js";
export { InfluxWriter } from "./influx-writer.js";
export { Backoff, parseRetryAfter } from "./backoff.js";
export { redact, displayUrl } from "./redact.js";
