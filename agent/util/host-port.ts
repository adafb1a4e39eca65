// How an address is written next to a port, in a URL or a message: IPv6 in brackets.

/** `host` as it stands before `:port` or in a URL: an IPv6 address in brackets. */
export function bracketHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** `host:port`, with brackets for IPv6. */
export function hostPort(host: string, port: number): string {
  return `${bracketHost(host)}:${port}`;
}
