// `anylat demo`'s parts: the agents' configs, starting and stopping the whole demo, what the
// topology says the agents should measure, InfluxDB delivery from outside the lab, the terminal view.
export {
  agentConfigYaml,
  DEFAULT_ROUNDS,
  DEMO_SERVICE,
  demoAgentId,
  everySeconds,
  probeTimeoutMs,
  REGION_COORDINATES,
  type DemoRounds,
} from './agent-config.ts';
export { logTail, startDemo, type DemoAgent, type DemoOptions, type DemoStopReport, type RunningDemo } from './demo.ts';
export { describeWith, expectedBenefits, failureHints, type ExpectedBenefit } from './expected.ts';
export { DemoSinks, influxFromEnv, INFLUX_ENV } from './influx.ts';
export { labPresence, waitForLabFree, type LabPresence } from './lab-busy.ts';
export { demoSnapshot, formatSnapshot, type DemoSnapshot, type SnapshotOptions } from './live-table.ts';
export { DemoScreen } from './screen.ts';
