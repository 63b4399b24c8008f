import cliProgress from 'cli-progress';
import { RegistryClient } from '../../artifacts/client.js';
import { silentProgress, type Progress } from '../../artifacts/progress.js';
import { errorLines } from '../errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:5000';

export interface ConnectionOptions {
  readonly url?: string | undefined;
}

/** A client for `--url` with the token from CUSTOMS_TOKEN (never taken from the command line, where `ps` shows it). */
export function clientFor(opts: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): RegistryClient {
  return new RegistryClient({ url: opts.url ?? env.CUSTOMS_URL ?? DEFAULT_URL, token: env.CUSTOMS_TOKEN || undefined });
}

/** A byte progress bar on stderr when it is a terminal; nothing otherwise (logs and pipes stay clean). */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return silentProgress;
  let bar: cliProgress.SingleBar | undefined;
  let value = 0;
  let started = 0;
  return {
    begin(label, total) {
      value = 0;
      started = Date.now();
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: `${label.padEnd(11)} [{bar}] {percentage}% | {done}/{size} | {speed}`,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(Math.max(total, 1), 0, { done: mib(0), size: mib(total), speed: '' });
    },
    tick(n) {
      value += n;
      const secs = (Date.now() - started) / 1000;
      bar?.update(value, { done: mib(value), speed: secs > 0 ? `${mib(value / secs)}/s` : '' });
    },
    end() {
      bar?.stop();
      bar = undefined;
    },
  };
}

const mib = (n: number): string => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

/** Writes what a command prints; tests pass their own. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}
export const stdio: Output = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

/**
 * Runs a command body; a RegistryError becomes `error: <message>` plus its detail (e.g. the
 * gate's failed rules on DENIED) on stderr and exit code 1, instead of a stack trace.
 */
export function runAction<A extends unknown[]>(fn: (...args: A) => Promise<unknown>, io: Output = stdio): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      for (const line of errorLines(e)) io.err(line);
      process.exitCode = 1;
    }
  };
}

/** Commander collector for repeatable options. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
