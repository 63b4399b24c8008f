import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** customs as a child process (`node bin/customs.js serve ...`), for signals and kill -9. */
export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Every stdout line so far (JSON logs). */
  readonly lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['bin/customs.js', 'serve', '--listen', '127.0.0.1:0', ...args], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      lines.push(line);
      try {
        const j = JSON.parse(line) as { msg?: string; url?: string };
        if (j.msg === 'listening' && j.url) resolve(j.url);
      } catch {
        /* not JSON */
      }
    });
    void exited.then(({ code }) => reject(new Error(`customs exited (${code}) before listening: ${stderr}`)));
  });
  return { url, child, lines, exited };
}
