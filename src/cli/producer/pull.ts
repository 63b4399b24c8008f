import { attach, type AttachKind } from '../../artifacts/attach.js';
import { writeFile } from 'node:fs/promises';
import { fetchModelSignature } from '../../artifacts/model-signing.js';
import { pull, type PullResult } from '../../artifacts/pull.js';
import type { PushedReferrer } from '../../artifacts/referrers.js';
import { loadSigningKey } from '../../artifacts/sign.js';
import { signArtifact, type SignedArtifact } from '../../artifacts/sign-existing.js';
import { err } from '../../oci/index.js';
import { clientFor, stdio, terminalProgress, type ConnectionOptions, type Output } from './common.js';

export interface PullCliOptions extends ConnectionOptions {
  readonly json?: boolean;
  readonly modelSignature?: string;
}

/** `customs pull <ref> <dir>`: the gate's verdict comes with the manifest; every file is verified. */
export async function pullCommand(ref: string, dir: string, opts: PullCliOptions, io: Output = stdio): Promise<PullResult> {
  const client = clientFor(opts);
  const r = await pull(client, ref, dir, terminalProgress());
  if (opts.modelSignature) {
    const sig = await fetchModelSignature(client, r.repository, r.digest);
    if (!sig) throw err('NAME_UNKNOWN', `${r.repository}@${r.digest} has no OpenSSF model signature the registry serves`);
    await writeFile(opts.modelSignature, sig);
    io.err(`wrote the model signature to ${opts.modelSignature}`);
  }
  if (opts.json) io.out(JSON.stringify(r, null, 2));
  else {
    for (const f of r.files) io.err(`${f.skipped ? 'unchanged' : f.resumedFrom > 0 ? `resumed@${f.resumedFrom}` : 'pulled'} ${f.digest} ${f.path}`);
    io.out(`${r.repository}@${r.digest}`);
  }
  return r;
}

export interface AttachCliOptions extends ConnectionOptions {
  readonly sbom?: string;
  readonly provenance?: string;
  readonly signature?: string;
  readonly created?: string;
}

/** `customs attach <ref> --sbom FILE | --provenance FILE | --signature FILE`; prints the referrer digest. */
export async function attachCommand(ref: string, opts: AttachCliOptions, io: Output = stdio): Promise<PushedReferrer> {
  const given = (['sbom', 'provenance', 'signature'] as const).filter((k) => opts[k] !== undefined);
  if (given.length !== 1) throw err('UNSUPPORTED', 'give exactly one of --sbom, --provenance, --signature');
  const kind: AttachKind = given[0]!;
  const r = await attach(clientFor(opts), ref, kind, opts[kind]!, opts.created);
  io.err(`attached ${kind} as ${r.artifactType}${r.predicateType ? ` (${r.predicateType})` : ''}`);
  io.out(r.digest);
  return r;
}

export interface SignCliOptions extends ConnectionOptions {
  readonly key: string;
  readonly created?: string;
  readonly json?: boolean;
}

/** `customs sign <ref> --key FILE`: prints the signature referrer's digest (or, with --json, subject and signature). */
export async function signCommand(ref: string, opts: SignCliOptions, io: Output = stdio): Promise<SignedArtifact> {
  const key = await loadSigningKey(opts.key);
  const r = await signArtifact(clientFor(opts), ref, key, opts.created);
  if (opts.json) io.out(JSON.stringify({ repository: r.repository, subject: r.subject, signature: r.digest }, null, 2));
  else {
    io.err(`signed ${r.repository}@${r.subject} with key ${key.hint}`);
    io.out(r.digest);
  }
  return r;
}
