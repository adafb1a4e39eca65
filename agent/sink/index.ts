// The InfluxDB sink: drains the store's outbox, acknowledges only what InfluxDB accepted.
export { Sink } from './sink.ts';
export type { DrainResult, SinkOptions, SinkState, SinkStatus } from './sink.ts';
export { InfluxWriter } from './influx-writer.ts';
export type { InfluxTarget, WriteOutcome } from './influx-writer.ts';
export { Backoff, parseRetryAfter } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';
export { redact, displayUrl } from './redact.ts';
