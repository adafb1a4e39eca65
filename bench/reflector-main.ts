// The benchmarks' reflector, started inside each origin's namespace beside the lab's own: the same
// parts as `anylat reflector`, with the per-source caps lifted, because one benchmark agent holds
// hundreds of connections to each origin at once (the CLI's caps are for the internet).
//   node --import tsx bench/reflector-main.ts ADDRESS SITE UDP_PORT TCP_PORT HTTP_PORT
import { startHttpReflector } from '../agent/reflector/http.ts';
import { startStampReflector } from '../agent/reflector/stamp.ts';
import { startTcpEcho } from '../agent/reflector/tcp-echo.ts';

const [address, site, udp, tcp, http] = process.argv.slice(2);
if (!address || !site || !udp || !tcp || !http) {
  process.stderr.write('usage: reflector-main.ts ADDRESS SITE UDP_PORT TCP_PORT HTTP_PORT\n');
  process.exit(2);
}
const common = { site, binds: [address], log: (line: string) => process.stderr.write(`${line}\n`) };
const parts = [
  await startStampReflector({ ...common, port: Number(udp), ratePerSourcePps: 0, maxSessions: 65_536 }),
  await startTcpEcho({ ...common, port: Number(tcp), maxConnections: 32_768, maxConnectionsPerSource: 32_768 }),
  await startHttpReflector({ ...common, port: Number(http), maxConnections: 32_768, bytes: { bytesPerSecond: 0 } }),
];
process.stdout.write(`ready ${address}\n`);
const stop = () => void Promise.all(parts.map((p) => p.close())).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
