import { assertName } from '../oci/index.js';

/** The /v2/ routes of the distribution spec; a name may contain slashes, so match from the right. */
export type V2Route =
  | { readonly kind: 'base' }
  | { readonly kind: 'catalog' }
  | { readonly kind: 'uploads'; readonly name: string }
  | { readonly kind: 'upload'; readonly name: string; readonly id: string }
  | { readonly kind: 'blob'; readonly name: string; readonly digest: string }
  | { readonly kind: 'manifest'; readonly name: string; readonly reference: string }
  | { readonly kind: 'tags'; readonly name: string }
  | { readonly kind: 'referrers'; readonly name: string; readonly digest: string }
  | { readonly kind: 'unknown' };

const PATTERNS: ReadonlyArray<[RegExp, (m: RegExpExecArray) => V2Route]> = [
  [/^\/v2\/?$/, () => ({ kind: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ kind: 'catalog' })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

/**
 * Parses a raw (still percent-encoded) path. Names are validated here, so a name
 * with `..`, `%2e`, uppercase or an empty segment is NAME_INVALID before any
 * service sees it. `ns` (distribution spec, "Registry Proxying") prefixes the name.
 */
export function parseV2Path(path: string, ns?: string): V2Route {
  for (const [re, make] of PATTERNS) {
    const m = re.exec(path);
    if (!m) continue;
    const route = make(m);
    if ('name' in route) {
      const name = ns ? `${ns}/${route.name}` : route.name;
      return { ...route, name: assertName(name) };
    }
    return route;
  }
  return { kind: 'unknown' };
}
