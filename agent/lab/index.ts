// The lab's programmatic API (what `anylat lab` and `anylat demo` build on).
export {
  checkHost,
  describeLab,
  fail,
  findNode,
  heal,
  labDescription,
  labDown,
  labUp,
  requireLab,
  startWire,
  type DownReport,
  type ExpectedRtt,
  type LabDescription,
  type LabOptions,
  type LabUpOptions,
} from './lab.ts';
export { labStatus, type LabStatus } from './status.ts';
export { addNamespace, deleteNamespace, execIn, ipBatch, labNamespaces, spawnIn, type ExecResult } from './netns.ts';
export { favourSession, isAlive, LAB_NICE, niced, stopProcesses, type LabProcess } from './processes.ts';
export { edgeFor, originFor, type Failures } from './routing.ts';
export { labDir } from './state.ts';
export {
  DEFAULT_TOPOLOGY_FILE,
  LAB_PREFIX,
  loadTopology,
  parseTopology,
  type LabLink,
  type LabNode,
  type LabTopology,
} from './topology.ts';
export { directionParams, type WireLink, type WireSpec, type WireStats } from './wire-spec.ts';
