import { isValidName } from '../oci/index.js';
import type { UpstreamConfig } from './config.js';
import type { ProxyTarget } from './pull-through.js';

/**
 * Maps a request's repository onto an upstream. `docker.io/library/alpine` goes to
 * the upstream named `docker.io` (longest matching prefix wins, so `ghcr.io` and
 * `ghcr.io/org` can differ), remote repository `library/alpine`. With the spec's
 * `ns` parameter ("Registry Proxying"), `library/alpine?ns=docker.io` maps the same
 * way. The local repository is the name as the client wrote it, prefixed with the
 * upstream (`docker.io/alpine` stays `docker.io/alpine` locally, though it is
 * `library/alpine` upstream): the registry's own lookups by request name then find
 * what pull-through stored.
 */
export class UpstreamTargets {
  private readonly byLength: readonly UpstreamConfig[];
  private readonly byName: ReadonlyMap<string, UpstreamConfig>;

  constructor(upstreams: readonly UpstreamConfig[]) {
    this.byLength = [...upstreams].sort((a, b) => b.name.length - a.name.length);
    this.byName = new Map(upstreams.map((u) => [u.name, u]));
  }

  resolve(repository: string, ns?: string): ProxyTarget | undefined {
    if (ns !== undefined && ns !== '') {
      const u = this.byName.get(ns);
      // An `ns` we do not serve is ignored (the spec lets a registry not honour it).
      if (u) return target(u, repository, ns);
    }
    for (const u of this.byLength) {
      if (repository.startsWith(`${u.name}/`) && repository.length > u.name.length + 1) {
        return target(u, repository.slice(u.name.length + 1), undefined);
      }
    }
    return undefined;
  }

  get(name: string): UpstreamConfig | undefined {
    return this.byName.get(name);
  }
}

function target(u: UpstreamConfig, rest: string, namespace: string | undefined): ProxyTarget | undefined {
  const remote = u.dockerHubLibrary && !rest.includes('/') ? `library/${rest}` : rest;
  const repository = `${u.name}/${rest}`;
  if (!isValidName(remote) || !isValidName(repository)) return undefined;
  return { upstream: u.name, remote, repository, namespace };
}
