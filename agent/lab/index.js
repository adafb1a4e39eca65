// The lab's programmatic API (what `anylat lab` and `anylat demo` build on).
export { checkHost, describeLab, fail, findNode, heal, labDescription, labDown, labUp, requireLab, startWire, } from "./lab.js";
export { labStatus } from "./status.js";
export { addNamespace, deleteNamespace, execIn, ipBatch, labNamespaces, spawnIn } from "./netns.js";
export { isAlive, LAB_NICE, niced, stopProcesses } from "./processes.js";
export { edgeFor, originFor } from "./routing.js";
export { labDir } from "./state.js";
export { DEFAULT_TOPOLOGY_FILE, LAB_PREFIX, loadTopology, parseTopology } from "./topology.js";
export { directionParams } from "./wire-spec.js";
