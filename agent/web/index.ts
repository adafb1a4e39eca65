// The embedded web dashboard: `startWebServer` serves the page and its JSON endpoints over a store.
export { startWebServer, SECURITY_HEADERS } from './server.ts';
export type { WebServer, WebServerOptions } from './server.ts';
export { parseListen, isLoopbackIp, DEFAULT_LISTEN } from './listen.ts';
export type { ListenSpec, ListenAddress } from './listen.ts';
export { ENDPOINTS } from './api.ts';
export type * from './queries.ts';
