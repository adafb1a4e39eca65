// `anylat demo`'s parts: the agents' configs, starting and stopping the whole demo, what the
// topology says the agents should measure, InfluxDB delivery from outside the lab, the terminal view.
export { agentConfigYaml, DEFAULT_ROUNDS, DEMO_SERVICE, demoAgentId, everySeconds, probeTimeoutMs, REGION_COORDINATES } from "./agent-config.js";
export { logTail, startDemo } from "./demo.js";
export { describeWith, expectedBenefits, failureHints } from "./expected.js";
export { DemoSinks, influxFromEnv, INFLUX_ENV } from "./influx.js";
export { labPresence, waitForLabFree } from "./lab-busy.js";
export { demoSnapshot, formatSnapshot } from "./live-table.js";
export { DemoScreen } from "./screen.js";
