// The embedded web dashboard: `startWebServer` serves the page and its JSON endpoints over a store.
export { startWebServer, SECURITY_HEADERS } from "./server.js";
export { parseListen, isLoopbackIp, DEFAULT_LISTEN } from "./listen.js";
export { ENDPOINTS } from "./api.js";
