import { execFile } from 'node:child_process';

const ROOT = new URL('../..', import.meta.url).pathname;

/** Runs `node bin/customs.js ...args` (the built CLI) and returns its exit code and output. */
export function customsCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/customs.js', ...args], { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (e, stdout, stderr) => {
      const code = e ? (typeof (e as { code?: unknown }).code === 'number' ? ((e as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
