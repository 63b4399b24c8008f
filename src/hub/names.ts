import { createHash, type Hash } from 'node:crypto';
import { isValidName, parseDigest, type Digest } from '../oci/index.js';

/**
 * The Hugging Face Hub's names, as huggingface_hub 2.x checks and builds them
 * (utils/_validators.py, constants.py, file_download.py), and how they map onto
 * customs' repositories, digests and git object ids.
 */
export type RepoType = 'model' | 'dataset';

/** `repo_name` or `namespace/repo_name`: the client refuses anything else before it sends a request. */
const REPO_ID = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\/[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?$/;

export function isValidRepoId(id: string): boolean {
  return id.length <= 96 && REPO_ID.test(id) && !id.includes('--') && !id.includes('..') && !id.endsWith('.git');
}

/** What huggingface_hub takes for a commit hash (`REGEX_COMMIT_HASH`): the only revisions it never re-resolves. */
export const isCommit = (revision: string): boolean => /^[0-9a-f]{40}$/.test(revision);

/**
 * The commit a local artifact is known by: the first 40 hex digits of its manifest's
 * sha256 (160 bits, git's own width). Stable for a digest, and a revision in this
 * form resolves back to the manifest.
 */
export const commitOfDigest = (digest: Digest): string => parseDigest(digest).hex.slice(0, 40);

/** A customs repository for a Hub repo id served from local storage (OCI names are lower case). */
export function localRepository(id: string): string | undefined {
  const name = id.toLowerCase();
  return isValidName(name) ? name : undefined;
}

/** Where an upstream repo is stored: `<upstream>/<org>/<model>`, datasets under `<upstream>/datasets/`. */
export function upstreamRepository(upstream: string, type: RepoType, id: string): string | undefined {
  const name = `${upstream}/${type === 'dataset' ? 'datasets/' : ''}${id.toLowerCase()}`;
  return isValidName(name) ? name : undefined;
}

/** `git hash-object` of a file, computed while streaming: sha1 over `blob <size>\0` and the bytes. */
export class GitBlobHasher {
  private readonly hash: Hash;
  constructor(size: number) {
    this.hash = createHash('sha1').update(`blob ${size}\0`);
  }
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}

export const gitBlobId = (bytes: Uint8Array): string => {
  const h = new GitBlobHasher(bytes.byteLength);
  h.update(bytes);
  return h.hex();
};

/** The git-lfs pointer file a Hub repo holds in git for a large file (git-lfs spec v1). */
export const lfsPointer = (sha256Hex: string, size: number): string => `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256Hex}\nsize ${size}\n`;

/** The git object id and size of that pointer: what the Hub lists as an LFS file's `oid` and `pointerSize`. */
export function lfsPointerInfo(sha256Hex: string, size: number): { oid: string; pointerSize: number } {
  const pointer = Buffer.from(lfsPointer(sha256Hex, size));
  return { oid: gitBlobId(pointer), pointerSize: pointer.byteLength };
}

/**
 * A path inside a repo as a file name: relative, `/`-separated, no empty, `.` or `..`
 * segment, no NUL (the client validates the same before writing into its cache).
 */
export function isSafeRepoPath(path: string): boolean {
  if (path.length === 0 || path.length > 1024 || path.startsWith('/') || path.includes('\0') || path.includes('\\')) return false;
  return path.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}
