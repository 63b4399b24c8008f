import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { err, parseDigest, type Digest } from '../oci/index.js';
import { InToto, TRAINING_BUILD_TYPE } from './media-types.js';
import { statement, type Statement, type Subject } from './sign.js';

const run = promisify(execFile);

/**
 * SLSA provenance v1 (https://slsa.dev/spec/v1.0/provenance) for a training run, in an
 * in-toto Statement v1 whose subject is the model manifest. Lineage reads
 * `resolvedDependencies`: the code commit, each dataset and each base model by digest.
 */
export interface ResourceDescriptor {
  readonly name?: string;
  readonly uri?: string;
  readonly digest: Record<string, string>;
  readonly annotations?: Record<string, unknown>;
}

export interface GitSource {
  /** `git+<remote>@<ref>`, the SLSA convention for a git dependency. */
  readonly uri: string;
  readonly remote: string;
  readonly ref: string;
  readonly commit: string;
  readonly dirty: boolean;
  /** The code's folder inside the repository (`--code ml/train`), posix-style; absent at the root. */
  readonly subpath?: string;
  /** With `dirty`: the first uncommitted changes and untracked files, as `git status --porcelain` lists them. */
  readonly changes?: readonly string[];
}

async function git(dir: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', ['-C', dir, ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Drops credentials from an https remote so a token in a remote URL never lands in an attestation. */
export function scrubRemote(remote: string): string {
  try {
    const u = new URL(remote);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString().replace(/\/$/, '');
  } catch {
    return remote; // scp-like git@host:path, or a path
  }
}

/**
 * Reads the commit, ref and remote of a work tree. A tree with uncommitted changes or untracked
 * files (a new script the run imported is as much code as an edited one; ignored files are not)
 * is refused unless `allowDirty`, because the commit would not describe the code that ran.
 */
export async function gitSource(dir: string, allowDirty: boolean): Promise<GitSource> {
  const root = await git(dir, 'rev-parse', '--show-toplevel').catch(() => {
    throw err('NAME_UNKNOWN', `${dir} is not inside a git work tree`);
  });
  const commit = await git(root, 'rev-parse', 'HEAD').catch(() => {
    throw err('NAME_UNKNOWN', `${root} has no commit yet`);
  });
  const ref = await git(root, 'symbolic-ref', '-q', 'HEAD').catch(() => commit); // detached HEAD: the commit
  // Not trimmed: the first column of `--porcelain` is a space for a change not yet staged.
  const { stdout: status } = await run('git', ['-C', root, 'status', '--porcelain', '--untracked-files=all'], { maxBuffer: 16 * 1024 * 1024 });
  const changes = status.split('\n').filter((l) => l.length > 0).slice(0, 50);
  const dirty = changes.length > 0;
  if (dirty && !allowDirty) {
    throw err('DENIED', `the work tree ${root} has uncommitted changes or untracked files; commit (or .gitignore) them, or pass --allow-dirty (recorded in the provenance)`, changes.slice(0, 20));
  }
  const sub = relative(await realpath(root), await realpath(dir)).split(sep).join('/');
  let remote = await git(root, 'remote', 'get-url', 'origin').catch(() => '');
  if (!remote) {
    const first = (await git(root, 'remote').catch(() => '')).split('\n')[0];
    if (first) remote = await git(root, 'remote', 'get-url', first).catch(() => '');
  }
  remote = remote ? scrubRemote(remote) : `file://${resolve(root)}`;
  return { uri: `git+${remote}@${ref}`, remote, ref, commit, dirty, ...(sub ? { subpath: sub } : {}), ...(dirty ? { changes } : {}) };
}

export interface OciMaterial {
  /** `repo:tag`, `repo@digest` or a bare digest, as given on the command line. */
  readonly given: string;
  readonly repository?: string | undefined;
  readonly digest: Digest;
}

/** `oci://host/repo@digest` when the repository is known, else no URI (a bare digest still identifies it). */
export function ociMaterial(m: OciMaterial, host: string, role: string): ResourceDescriptor {
  const p = parseDigest(m.digest);
  return {
    name: m.repository ?? m.digest,
    ...(m.repository ? { uri: `oci://${host}/${m.repository}@${m.digest}` } : {}),
    digest: { [p.algorithm]: p.hex },
    annotations: { role, ...(m.given !== m.digest ? { reference: m.given } : {}) },
  };
}

export interface ProvenanceInput {
  readonly subject: Subject;
  readonly builderId: string;
  readonly parameters: Record<string, string>;
  readonly code?: GitSource | undefined;
  readonly datasets: readonly ResourceDescriptor[];
  readonly baseModels: readonly ResourceDescriptor[];
  readonly startedOn?: string | undefined;
  readonly finishedOn: string;
  readonly invocationId?: string | undefined;
  /** What ran, relative to the code's folder (`train.py`). */
  readonly entryPoint?: string | undefined;
  /** Another build type than a customs training run (a DVC dataset). */
  readonly buildType?: string | undefined;
  /** Structured external parameters next to the `--param` strings (an MLflow run's identity). */
  readonly extraParameters?: Record<string, unknown> | undefined;
  /** More resolved dependencies (sources recorded by MLflow or DVC). */
  readonly dependencies?: readonly ResourceDescriptor[] | undefined;
  /** SLSA `runDetails.byproducts` (the MLflow run's metrics). */
  readonly byproducts?: readonly Partial<ResourceDescriptor>[] | undefined;
}

/** externalParameters keys customs writes itself; `--param` may not use them. */
export const RESERVED_PARAMETERS = ['entryPoint', 'subpath'] as const;

export function buildProvenance(input: ProvenanceInput): Statement {
  const deps: ResourceDescriptor[] = [];
  if (input.code) {
    deps.push({
      uri: input.code.uri,
      digest: { gitCommit: input.code.commit },
      annotations: { role: 'source', ...(input.code.subpath ? { subpath: input.code.subpath } : {}), ...(input.code.dirty ? { dirty: true } : {}) },
    });
  }
  deps.push(...(input.dependencies ?? []), ...input.datasets, ...input.baseModels);
  const predicate = {
    buildDefinition: {
      buildType: input.buildType ?? TRAINING_BUILD_TYPE,
      // What the caller chose: the parameters, which script ran, and from which folder of the repository.
      externalParameters: {
        ...input.parameters,
        ...input.extraParameters,
        ...(input.entryPoint ? { entryPoint: input.entryPoint } : {}),
        ...(input.code?.subpath ? { subpath: input.code.subpath } : {}),
      },
      // A dirty tree is recorded where a verifier looks for how the build ran, not only in an annotation.
      internalParameters: input.code?.dirty ? { dirtyWorkTree: true, uncommitted: input.code.changes ?? [] } : {},
      resolvedDependencies: deps,
    },
    runDetails: {
      builder: { id: input.builderId },
      metadata: {
        ...(input.invocationId ? { invocationId: input.invocationId } : {}),
        ...(input.startedOn ? { startedOn: input.startedOn } : {}),
        finishedOn: input.finishedOn,
      },
      ...(input.byproducts?.length ? { byproducts: input.byproducts } : {}),
    },
  };
  return statement(input.subject, InToto.slsaProvenanceV1, predicate);
}

/** Parses repeated `k=v` options into an object; a key given twice is an error. */
export function parseParams(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0) throw err('MANIFEST_INVALID', `--param expects key=value, got ${JSON.stringify(p)}`);
    const k = p.slice(0, i);
    if (k in out) throw err('MANIFEST_INVALID', `--param ${k} given twice`);
    if ((RESERVED_PARAMETERS as readonly string[]).includes(k)) throw err('MANIFEST_INVALID', `--param ${k} is recorded by customs itself (use --entry-point, or --code on the folder)`);
    out[k] = p.slice(i + 1);
  }
  return out;
}
