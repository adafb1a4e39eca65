// "Another process loads both cores": plain busy loops in their own processes, one per CPU, at the
// same priority as everything else. They touch no network.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';

export interface CpuLoad {
  readonly processes: number;
  stop(): Promise<void>;
}

export function loadCpus(count = cpus().length): CpuLoad {
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) children.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  return {
    processes: count,
    stop: async () => {
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once('exit', () => resolve());
              c.kill('SIGKILL');
            }),
        ),
      );
    },
  };
}
