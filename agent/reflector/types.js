// What each part of the reflector (STAMP over UDP, TCP echo, HTTP) exposes to the reflector's
// wiring in reflector/index.ts.
export {};
