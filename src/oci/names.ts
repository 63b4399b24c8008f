import { err } from './errors.js';
import { parseDigest, type Digest } from './digest.js';

/**
 * Repository names and references, from the distribution spec ("Pulling manifests"):
 *   name:      [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 *   tag:       [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 * Names are capped so that a name plus "/" plus a reference fits the 255 characters
 * many clients assume.
 */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
export const MAX_NAME_LENGTH = 255;

export function isValidName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

export function assertName(name: string): string {
  if (!isValidName(name)) throw err('NAME_INVALID', `invalid repository name: ${JSON.stringify(name.slice(0, 300))}`);
  return name;
}

export const isValidTag = (tag: string): boolean => TAG.test(tag);

export type Reference = { readonly kind: 'tag'; readonly tag: string } | { readonly kind: 'digest'; readonly digest: Digest };

/** A manifest reference: a digest if it contains ':', else a tag. */
export function parseReference(ref: string): Reference {
  if (ref.includes(':')) return { kind: 'digest', digest: parseDigest(ref).digest };
  if (!isValidTag(ref)) throw err('MANIFEST_INVALID', `invalid tag: ${JSON.stringify(ref.slice(0, 200))}`);
  return { kind: 'tag', tag: ref };
}

/** A client-side reference `repo:tag` or `repo@digest` (the form the CLI takes). */
export function parseRepoReference(value: string): { repository: string; reference: Reference } {
  const at = value.indexOf('@');
  if (at >= 0) {
    return { repository: assertName(value.slice(0, at)), reference: { kind: 'digest', digest: parseDigest(value.slice(at + 1)).digest } };
  }
  const slash = value.lastIndexOf('/');
  const colon = value.lastIndexOf(':');
  if (colon > slash) {
    return { repository: assertName(value.slice(0, colon)), reference: parseReference(value.slice(colon + 1)) };
  }
  return { repository: assertName(value), reference: { kind: 'tag', tag: 'latest' } };
}

export const referenceString = (r: Reference): string => (r.kind === 'tag' ? r.tag : r.digest);
