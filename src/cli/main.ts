import { Command, Option } from 'commander';
import { startServer } from '../server.js';
import { ConfigError } from '../config/load.js';

/** `customs`: the server and the client commands. */
export function buildProgram(): Command {
  const program = new Command('customs').description('a pull-through OCI registry and model artifact store that serves only what its policy verifies');
  program
    .command('serve')
    .description('run the registry')
    .option('--listen <host:port>', 'address to listen on (port 0 picks a free port)')
    .option('--data <dir>', 'data directory (blobs, metadata, trust keys)', './data')
    .option('--config <file>', 'configuration file (YAML)')
    .addOption(new Option('--gate <mode>', 'override the mode of every policy rule').choices(['enforce', 'audit', 'off']))
    .option('--upstream <name=url>', 'add an anonymous upstream (repeatable)', collect, [] as string[])
    .option('--log-level <level>', 'silent|error|warn|info|debug')
    .action(async (o: { listen?: string; data: string; config?: string; gate?: 'enforce' | 'audit' | 'off'; upstream: string[]; logLevel?: 'info' }) => {
      const upstreams: Record<string, string> = {};
      for (const u of o.upstream) {
        const i = u.indexOf('=');
        if (i <= 0) throw new ConfigError(`--upstream ${u}: expected NAME=URL`);
        upstreams[u.slice(0, i)] = u.slice(i + 1);
      }
      const server = await startServer({ listen: o.listen, dataDir: o.data, configFile: o.config, gate: o.gate, upstreams, logLevel: o.logLevel });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        server.log.info({ signal }, 'shutting down');
        server.close().then(
          () => process.exit(0),
          (e: Error) => {
            server.log.error({ err: e.message }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
  return program;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`customs: ${e.message}\n`);
      process.exit(2);
    }
    const code = (e as { code?: string }).code;
    process.stderr.write(`customs: ${code ? `${code}: ` : ''}${(e as Error).message}\n`);
    process.exit(1);
  }
}
