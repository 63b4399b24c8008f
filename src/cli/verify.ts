import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Command } from 'commander';
import { parseRepoReference, referenceString, wireError } from '../oci/index.js';
import { errorLines } from './errors.js';
import type { Verdict } from '../verify/types.js';
import { writeKeyPair } from '../verify/index.js';
import { runDeepVerify } from './ops/index.js';
import { targetFrom } from './ops/client.js';

/** `customs verify` and `customs keygen`. */
export function registerVerify(program: Command): void {
  program
    .command('verify <ref>')
    .description('print every finding of the gate for <repo>:<tag> or <repo>@<digest>; exit 0 only when allowed')
    .option('--config <file>', "evaluate this config file's policy instead of the server's (what-if)")
    .option('--deep', 're-hash every blob, re-run the gate, and check provenance materials still match')
    .option('--url <url>', 'customs server (default $CUSTOMS_URL or http://127.0.0.1:5000)')
    .option('--json', 'print the verdict as JSON')
    .action(async (ref: string, o: { config?: string; deep?: boolean; url?: string; json?: boolean }) => {
      if (o.deep) {
        await runDeepVerify(ref, { url: o.url, json: o.json }); // throws (exit 1) when a check fails
        return;
      }
      const { repository, reference } = parseRepoReference(ref);
      const policy = o.config ? (parseYaml(await readFile(o.config, 'utf8')) as { policy?: unknown } | null)?.policy : undefined;
      if (o.config && policy === undefined) throw new Error(`${o.config} has no policy: section`);
      const t = targetFrom(o);
      const res = await fetch(`${t.url}/admin/verify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(t.token ? { authorization: `Bearer ${t.token}` } : {}) },
        body: JSON.stringify({ repository, reference: referenceString(reference), ...(policy !== undefined ? { policy } : {}) }),
      });
      const text = await res.text();
      if (!res.ok) {
        for (const line of errorLines(wireError(`verify ${ref}`, res.status, res.statusText, text))) process.stderr.write(`${line}\n`);
        process.exitCode = 2;
        return;
      }
      const v = JSON.parse(text) as Verdict;
      if (o.json) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
      else {
        process.stdout.write(`${repository}@${v.digest}: ${v.allowed ? (v.wouldDeny ? 'ALLOWED (audit: would deny)' : 'ALLOWED') : 'DENIED'}  rule=${v.rule} mode=${v.mode}\n`);
        for (const f of v.findings) process.stdout.write(`  ${f.ok ? 'ok  ' : 'FAIL'}  ${f.rule}/${f.check}: ${f.reason}\n`);
      }
      process.exitCode = v.allowed ? 0 : 1;
    });

  program
    .command('keygen')
    .description('write an ECDSA P-256 key pair: <key> (private, mode 0600) and <key>.pub')
    .option('--key <file>', 'private key file', 'customs.key')
    .option('--data <dir>', 'also trust the public key on the server with this data directory (<data>/trust/keys/)')
    .action(async (o: { key: string; data?: string }) => {
      const privateKeyPath = resolve(o.key);
      const publicKeyPath = `${privateKeyPath}.pub`;
      writeKeyPair({ privateKeyPath, publicKeyPath });
      process.stdout.write(`private key: ${privateKeyPath} (mode 0600)\npublic key:  ${publicKeyPath}\n`);
      if (o.data) {
        const dir = join(resolve(o.data), 'trust', 'keys');
        await mkdir(dir, { recursive: true });
        const target = join(dir, `${privateKeyPath.split('/').pop()!.replace(/\.key$/, '')}.pub`);
        await copyFile(publicKeyPath, target);
        process.stdout.write(`trusted:     ${target} (a running server picks it up on SIGHUP)\n`);
      }
    });
}
