import { Command, Option } from 'commander';
import { startServer } from '../server.js';
import { ConfigError } from '../config/load.js';
import { hashSecret, newTokenSecret } from '../http/secrets.js';
import { register as registerProducer } from './producer/index.js';
import { register as registerOps } from './ops/index.js';
import { registerVerify } from './verify.js';
import { registerHub } from './hub.js';
import { register as registerIntegrity } from './integrity.js';
import { tuneHeapForServing } from './heap-tuning.js';
import { isClusterPrimary, parseWorkers, runPrimary, workerIdentity } from './cluster.js';
import { benchAblations } from '../bench-ablation.js';
import { errorLines } from './errors.js';

/** `customs`: the server and the client commands. */
export function buildProgram(): Command {
  const program = new Command('customs').description('a pull-through OCI registry and model artifact store that serves only what its policy verifies');
  program
    .command('serve')
    .description('run the registry')
    .option('--listen <host:port>', 'address to listen on (port 0 picks a free port)')
    .option('--data <dir>', 'data directory (blobs, metadata, trust keys); default: the config\'s data:, else ./data')
    .option('--config <file>', 'configuration file (YAML)')
    .addOption(new Option('--gate <mode>', 'override the mode of every policy rule').choices(['enforce', 'audit', 'off']))
    .option('--upstream <name=url>', 'add an anonymous upstream (repeatable)', collect, [] as string[])
    .option('--log-level <level>', 'silent|error|warn|info|debug')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate chain (re-read on SIGHUP)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option('--workers <n>', 'worker processes sharing the port and the data directory (a number, or auto: one per CPU)', '1')
    // No commander defaults for what the config file can set: an explicit flag wins over the file, the file over the built-in default.
    .action(async (o: { listen?: string; data?: string; config?: string; gate?: 'enforce' | 'audit' | 'off'; upstream: string[]; logLevel?: 'info'; tlsCert?: string; tlsKey?: string; workers?: string }) => {
      if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
      // Several workers: this process becomes their primary (cluster.ts) and serves nothing itself; each worker parses the same arguments.
      const workers = parseWorkers(o.workers);
      if (isClusterPrimary(workers)) return process.exit(await runPrimary(workers, o.logLevel));
      const upstreams: Record<string, string> = {};
      for (const u of o.upstream) {
        const i = u.indexOf('=');
        if (i <= 0) throw new ConfigError(`--upstream ${u}: expected NAME=URL`);
        upstreams[u.slice(0, i)] = u.slice(i + 1);
      }
      tuneHeapForServing();
      // Signals are handled from the start: a SIGHUP while the server is still starting is a reload once it is up,
      // not the default action (which ends the process); a SIGTERM then stops it as soon as it is up.
      let server: Awaited<ReturnType<typeof startServer>> | undefined;
      let reloadWhenUp = false;
      let stopWhenUp: string | undefined;
      let stopping = false;
      const reload = (s: NonNullable<typeof server>) => s.reload().catch((e: Error) => s.log.error({ err: e.message }, 'reload failed; keeping what did not load'));
      const stop = (signal: string) => {
        if (!server) return void (stopWhenUp ??= signal);
        if (stopping) return;
        stopping = true;
        const s = server;
        s.log.info({ signal }, 'shutting down');
        s.close().then(
          () => process.exit(0),
          (e: Error) => {
            s.log.error({ err: e.message }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGHUP', () => (server ? void reload(server) : (reloadWhenUp = true)));
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      const tls = o.tlsCert && o.tlsKey ? { cert: o.tlsCert, key: o.tlsKey } : undefined;
      server = await startServer({ listen: o.listen, dataDir: o.data, configFile: o.config, gate: o.gate, upstreams, logLevel: o.logLevel, tls, worker: workerIdentity(), ablate: benchAblations() });
      if (stopWhenUp) stop(stopWhenUp);
      else if (reloadWhenUp) void reload(server);
    });
  program
    .command('token')
    .description('API tokens')
    .command('create')
    .description('print a new API token and the config entry (with its scrypt hash) to add under auth.tokens')
    .requiredOption('--id <id>', 'token id (a-z, 0-9, -)')
    .option('--repositories <globs>', 'comma-separated repository globs', '**')
    .option('--actions <actions>', 'comma-separated: pull,push,delete,admin', 'pull')
    .action(async (o: { id: string; repositories: string; actions: string }) => {
      if (!/^[a-z0-9-]{1,40}$/.test(o.id) || o.id === 'admin') throw new ConfigError('--id must be 1-40 of a-z, 0-9, - (and not "admin")');
      const secret = newTokenSecret();
      const entry = { id: o.id, hash: await hashSecret(secret), permissions: [{ repositories: o.repositories.split(','), actions: o.actions.split(',') }] };
      process.stdout.write(`token (give it to the client as CUSTOMS_TOKEN; it is not stored anywhere): ctk_${o.id}_${secret}\n`);
      process.stdout.write(`config entry (auth.tokens):\n${JSON.stringify(entry)}\n`);
    });
  registerProducer(program);
  registerOps(program);
  registerVerify(program);
  registerHub(program);
  registerIntegrity(program);
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
    for (const line of errorLines(e)) process.stderr.write(`${line}\n`);
    process.exit(1);
  }
}
