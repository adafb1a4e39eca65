// A benchmark's agent side runs as its own process inside the agent's network namespace, driven
// over stdin/stdout with one JSON object per line: the driver sends a command, the child answers
// with one result line (progress goes to stderr).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { runnable } from '../../bin/compiled.js';

export class AgentChild {
  private readonly child: ChildProcess;
  private readonly waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  private stderr = '';
  private exited = false;

  /** `script`: the .ts file; it runs compiled, as the agent does, while the build is fresh (bin/compiled.js). */
  constructor(netns: string, script: string, args: string[] = []) {
    const run = runnable(script);
    this.child = spawn('ip', ['netns', 'exec', netns, process.execPath, ...run.execArgv, run.script, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (this.stderr.length > 100_000) this.stderr = this.stderr.slice(-50_000);
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const next = this.waiting.shift();
      if (!next) return;
      try {
        const value = JSON.parse(line) as { error?: unknown };
        if (typeof value === 'object' && value !== null && typeof value.error === 'string')
          next.reject(new Error(`agent child failed: ${value.error}`));
        else next.resolve(value);
      } catch {
        next.reject(new Error(`agent child printed a line that is not JSON: ${line.slice(0, 200)}`));
      }
    });
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      const err = new Error(`agent child ${script} exited (${code ?? signal}) with:\n${this.stderr.slice(-4000)}`);
      for (const w of this.waiting.splice(0)) w.reject(err);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sends one command and waits for its one result line. */
  request<T>(command: unknown): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`agent child has exited:\n${this.stderr.slice(-4000)}`));
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(killer);
  }
}

/** The child's side: answers each command line with `handle`'s result, one at a time. */
export function serveCommands(handle: (command: Record<string, unknown>) => Promise<unknown>): void {
  const rl = createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    chain = chain.then(async () => {
      let result: unknown;
      try {
        result = await handle(JSON.parse(line) as Record<string, unknown>);
      } catch (err) {
        result = { error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
      }
      process.stdout.write(`${JSON.stringify(result)}\n`);
    });
  });
  rl.on('close', () => void chain.then(() => process.exit(0)));
}
