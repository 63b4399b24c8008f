import { Command, InvalidArgumentError } from 'commander';
import { err } from '../../oci/index.js';
import { stdio, targetFrom, type Io } from './client.js';
import * as cmd from './commands.js';

export * as opsCommands from './commands.js';
export { targetFrom, stdio, type AdminTarget, type Io } from './client.js';

interface Conn {
  url?: string;
  json?: boolean;
}

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

/** Seconds, or 30m / 24h / 7d. */
const duration = (v: string): number => {
  const m = /^(\d+)([smhd]?)$/.exec(v);
  if (!m) throw new InvalidArgumentError('expected seconds, or 30m, 24h, 7d');
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
};

/**
 * The operator commands: pin, unpin, pins, history, rollback, quarantine, release, gc,
 * lineage, audit. They talk to a running server's /admin/ API at `--url`
 * (default $CUSTOMS_URL, else http://127.0.0.1:5000) with the token in $CUSTOMS_TOKEN.
 */
export function register(program: Command, io: Io = stdio, env: NodeJS.ProcessEnv = process.env): void {
  const client = (c: Command) => c.option('--url <url>', 'customs server URL (default $CUSTOMS_URL or http://127.0.0.1:5000)').option('--json', 'print JSON');
  const t = (o: Conn) => targetFrom(o, env);

  client(program.command('pin <ref> [digest]').description('pin <repo>:<tag> (optionally to <digest>): no push or upstream refresh moves it'))
    .requiredOption('--reason <text>', 'why (recorded in the audit log)')
    .action(async (ref: string, digest: string | undefined, o: Conn & { reason: string }) => void (await cmd.pin(t(o), io, ref, digest, o)));
  client(program.command('tag <src> <dst>').description('point <dst> (<repo>:<tag>, or a tag of the same repository) at what <src> (<repo>:<tag>|<repo>@<digest>) names; audited; refused for pinned tags'))
    .option('--reason <text>', 'recorded in the audit log')
    .action(async (src: string, dst: string, o: Conn & { reason?: string }) => void (await cmd.tag(t(o), io, src, dst, o)));
  client(program.command('unpin <ref>').description('unpin <repo>:<tag>'))
    .requiredOption('--reason <text>', 'why')
    .action(async (ref: string, o: Conn & { reason: string }) => void (await cmd.unpin(t(o), io, ref, o)));
  client(program.command('pins [repository]').description('list pinned tags')).action(async (repo: string | undefined, o: Conn) => void (await cmd.pins(t(o), io, repo, o)));
  client(program.command('history <ref>').description('every move of <repo>:<tag>: from, to, actor, time, reason')).action(
    async (ref: string, o: Conn) => void (await cmd.history(t(o), io, ref, o)),
  );
  client(program.command('rollback <ref>').description('move <repo>:<tag> back to an earlier digest from its history (skips quarantined and gate-denied digests); pins it'))
    .option('--to <digest>', 'the earlier digest to move to')
    .option('--steps <n>', 'how many eligible versions back (default 1)', int)
    .option('--no-pin', 'do not pin the tag afterwards')
    .requiredOption('--reason <text>', 'why')
    .action(async (ref: string, o: Conn & { reason: string; to?: string; steps?: number; pin: boolean }) => void (await cmd.rollback(t(o), io, ref, o)));
  client(program.command('quarantine [digest]').description('deny <digest> and its blobs everywhere; or --material <digest>: every artifact whose provenance names it'))
    .option('--material <digest>', 'quarantine every artifact whose provenance lists this material (transitively)')
    .option('--rollback', 'with --material: roll every affected tag back to its last unaffected digest')
    .option('--no-pin', 'with --rollback: do not pin the rolled-back tags')
    .option('--list', 'list quarantined digests')
    .option('--reason <text>', 'why (required unless --list)')
    .action(async (digest: string | undefined, o: Conn & { reason?: string; material?: string; rollback?: boolean; pin: boolean; list?: boolean }) => {
      if (o.list) return void (await cmd.listQuarantine(t(o), io, o));
      if (o.material && digest) throw err('NAME_INVALID', 'give a digest or --material, not both');
      if (o.material) return void (await cmd.quarantineMaterial(t(o), io, o.material, o));
      if (o.rollback) throw err('NAME_INVALID', '--rollback goes with --material (to roll back after quarantining one digest, use customs rollback)');
      if (!digest) throw err('NAME_INVALID', 'give a digest, --material <digest> or --list');
      await cmd.quarantine(t(o), io, digest, o);
    });
  client(program.command('release <digest>').description('lift the quarantine of <digest>'))
    .requiredOption('--reason <text>', 'why')
    .action(async (digest: string, o: Conn & { reason: string }) => void (await cmd.release(t(o), io, digest, o)));
  client(program.command('gc').description('delete blobs no manifest references (deleted models, abandoned pushes) once older than --grace; with --untagged, old untagged manifests first'))
    .option('--dry-run', 'report what would be removed; change nothing')
    .option('--grace <duration>', 'keep links younger than this: seconds, or 30m, 24h, 7d (default: the server\'s gc.graceSeconds, 24h unless configured)', duration)
    .option('--untagged <duration>', 'also delete untagged manifests whose last tag left them longer ago than this; rollback cannot go back further (default: the server\'s gc.untaggedAfterSeconds, else kept)', duration)
    .option('--reason <text>', 'recorded in the audit log')
    .action(async (o: Conn & { dryRun?: boolean; grace?: number; untagged?: number; reason?: string }) => void (await cmd.gc(t(o), io, o)));
  client(program.command('lineage [ref]').description('digest, tags, signers, code commit, datasets, base models, SBOM, referrers and verdict of <repo>:<tag>|<repo>@<digest>'))
    .option('--consumers <digest>', 'every artifact whose provenance names <digest>, transitively')
    .action(async (ref: string | undefined, o: Conn & { consumers?: string }) => {
      if (o.consumers) return void (await cmd.consumers(t(o), io, o.consumers, o));
      if (!ref) throw err('NAME_INVALID', 'give <ref> or --consumers <digest>');
      await cmd.lineage(t(o), io, ref, o);
    });

  const audit = program.command('audit').description('the hash-chained audit log');
  client(audit.command('list').description('entries, oldest first'))
    .option('--since <time>', 'ISO 8601, epoch ms, or relative: 30m, 24h, 7d')
    .option('--after <seq>', 'entries after this sequence number', int)
    .option('--limit <n>', 'at most this many entries (default 1000)', int)
    .action(async (o: Conn & { since?: string; after?: number; limit?: number }) => void (await cmd.auditList(t(o), io, o)));
  client(audit.command('export').description('every entry as JSON lines'))
    .option('--since <time>', 'ISO 8601, epoch ms, or relative: 30m, 24h, 7d')
    .action(async (o: Conn & { since?: string }) => void (await cmd.auditExport(t(o), io, o)));
  client(audit.command('verify').description('check the hash chain; names every edited, removed or reordered entry'))
    .option('--head <seq:hash>', 'a head recorded earlier: also detects truncation')
    .option('--file <path>', 'check an exported log (JSON lines) offline instead of the server\'s')
    .action(async (o: Conn & { head?: string; file?: string }) => void (await cmd.auditVerify(t(o), io, o)));
}

/** For the `verify` command's `--deep` flag (owned by the lead): runs the deep re-verification of `ref`. */
export async function runDeepVerify(ref: string, opts: { url?: string; json?: boolean }, io: Io = stdio, env: NodeJS.ProcessEnv = process.env) {
  return cmd.deepVerify(targetFrom(opts, env), io, ref, opts);
}
