// The InfluxDB schema as the dashboards and alert rules see it (DESIGN.md, "InfluxDB schema").
// Names are typed against the agent's own model so that renaming a field there breaks the
// dashboards at compile time instead of silently emptying a panel.
import type { AgentHeartbeat, BenefitRow, PathResult } from '../agent/core/model.ts';
import { MEASUREMENTS } from '../agent/core/line-protocol.ts';

export { MEASUREMENTS };
export type Measurement = (typeof MEASUREMENTS)[keyof typeof MEASUREMENTS];

/** Tags each measurement carries (agent labels come on top and are not used here); `size` only on transfer rows. */
export const TAGS = {
  latency: ['agent', 'agent_region', 'service', 'endpoint', 'kind', 'protocol', 'metric', 'scope', 'size'],
  benefit: ['agent', 'agent_region', 'service', 'protocol', 'metric', 'scope', 'baseline', 'size'],
  agent: ['agent', 'agent_region'],
  event: ['agent', 'agent_region', 'service', 'type'],
  trace: ['agent', 'agent_region', 'service', 'endpoint', 'kind', 'trigger'],
} as const satisfies Record<Measurement, readonly string[]>;

type NumericOrString<T> = { [K in keyof T]-?: NonNullable<T[K]> extends number | string ? K : never }[keyof T] & string;

/** Fields of `latency`: the numeric statistics of a path plus its `site` string. */
export type LatencyField = Exclude<
  NumericOrString<PathResult>,
  'endpoint' | 'kind' | 'address' | 'protocol' | 'metric' | 'scope'
>;
/** Fields of `benefit`. */
export type BenefitField = Exclude<NumericOrString<BenefitRow>, 'protocol' | 'metric' | 'scope' | 'baseline'>;
/** Fields of `agent` (the heartbeat). */
export type AgentField = Exclude<NumericOrString<AgentHeartbeat>, 'at'>;
/** Fields of `event`. */
export type EventField = 'message' | 'from' | 'to';
/** Fields of `trace`: one point per hop. */
export type TraceField = 'hop' | 'address' | 'rtt_ms' | 'name' | 'reached';

export type TagOf<M extends Measurement> = (typeof TAGS)[M][number];
export type FieldOf<M extends Measurement> = M extends 'latency'
  ? LatencyField
  : M extends 'benefit'
    ? BenefitField
    : M extends 'agent'
      ? AgentField
      : M extends 'event'
        ? EventField
        : TraceField;
export type ColumnOf<M extends Measurement> = TagOf<M> | FieldOf<M>;
