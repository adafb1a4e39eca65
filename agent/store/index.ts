// The embedded store: open it, save rounds and heartbeats, drain its outbox, query it.
export { openStore, Store } from './store.ts';
export type { DeadLetter, DroppedCounts, OutboxEntry, OutboxStatus, RoundSummary, StoreOptions } from './store.ts';
export type { RetentionOptions, RetentionResult } from './retention.ts';
export { DEFAULT_MAX_DEAD_LETTERS, DEFAULT_MAX_OUTBOX_ROWS } from './retention.ts';
export type { ReportQuery, ReportRow } from './queries.ts';
export type { TimingGap } from './timing-gaps.ts';
export { timingNote } from './timing-gaps.ts';
export { mean } from './queries.ts';
export type {
  AgentHealth,
  BenefitPoint,
  EventRow,
  LossPoint,
  LossTotal,
  RoundGaps,
  SeriesQuery,
  ServiceSummary,
} from './queries.ts';
export { SCHEMA_VERSION } from './schema.ts';
