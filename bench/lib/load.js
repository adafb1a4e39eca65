// "Another process loads both cores": plain busy loops in their own processes, one per CPU, at the
// same priority as everything else. They touch no network.
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
export function loadCpus(count = cpus().length) {
    const children = [];
    for (let i = 0; i < count; i++)
        children.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    return {
        processes: count,
        stop: async () => {
            await Promise.all(children.map((c) => new Promise((resolve) => {
                if (c.exitCode !== null || c.signalCode !== null)
                    return resolve();
                c.once('exit', () => resolve());
                c.kill('SIGKILL');
            })));
        },
    };
}
