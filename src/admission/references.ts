import { isValidName, isValidTag, type Digest } from '../oci/index.js';

/**
 * Image references as the node reads them (distribution/reference's normalisation, which
 * containerd and CRI-O share): `nginx` is `docker.io/library/nginx:latest`; the first path
 * component is a registry host only when it has a `.` or `:` or is `localhost`; a digest wins
 * over a tag. Then where customs serves it: its own repositories for its own host names, the
 * repository `<upstream>/<path>` for a registry it mirrors (what containerd's `ns=` asks for).
 */
export interface ImageRef {
  /** Registry host as written (docker.io when none). */
  readonly registry: string;
  /** Repository path at that registry (`library/nginx` for Docker Hub's short names). */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
}

const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export function parseImageRef(input: string): ImageRef | string {
  let rest = input.trim();
  if (rest === '' || rest.length > 1024) return 'empty or overlong reference';
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!/^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/.test(d)) return `invalid digest ${d}`;
    digest = d as Digest;
    rest = rest.slice(0, at);
  }
  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash > 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) return `invalid tag ${tag}`;
  }
  if (DOCKER_HUB_ALIASES.has(registry)) {
    registry = DOCKER_HUB;
    if (!rest.includes('/')) rest = `library/${rest}`;
  }
  if (!isValidName(rest)) return `invalid repository name ${rest}`;
  if (!tag && !digest) tag = 'latest';
  return { registry, path: rest, tag, digest };
}

export const refString = (r: ImageRef): string => `${r.registry}/${r.path}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;

/** Host names that mean customs itself: `host:port`, or `host` for any port. */
export class SelfHosts {
  private readonly exact = new Set<string>();
  private readonly anyPort = new Set<string>();
  constructor(private readonly hosts: readonly string[]) {
    for (const h of hosts) {
      const lower = h.toLowerCase();
      if (/:\d+$/.test(lower)) this.exact.add(lower);
      else this.anyPort.add(lower);
    }
  }
  has(registry: string): boolean {
    const lower = registry.toLowerCase();
    return this.exact.has(lower) || this.anyPort.has(lower.replace(/:\d+$/, ''));
  }
  /** The first name, for resource URIs. */
  first(): string | undefined {
    return this.hosts[0];
  }
}

export interface UpstreamName {
  readonly name: string;
  readonly url: string;
}

/**
 * The customs repository a node pulls `ref` from: customs' own (its host), an upstream's (a
 * registry it mirrors, by the upstream's name or its URL's host, Docker Hub's aliases included),
 * or none (the node would go to that registry without customs).
 */
export function repositoryFor(ref: ImageRef, self: SelfHosts, upstreams: readonly UpstreamName[]): string | undefined {
  if (self.has(ref.registry)) return ref.path;
  const host = (u: UpstreamName): string => {
    try {
      return new URL(u.url).host.toLowerCase();
    } catch {
      return '';
    }
  };
  const reg = ref.registry.toLowerCase();
  const hub = reg === DOCKER_HUB;
  const u =
    upstreams.find((x) => x.name.toLowerCase() === reg) ??
    upstreams.find((x) => host(x) === reg || (hub && DOCKER_HUB_ALIASES.has(host(x))));
  if (!u) return undefined;
  const repository = `${u.name}/${ref.path}`;
  return isValidName(repository) ? repository : undefined;
}
