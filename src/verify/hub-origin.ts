import type { ImageManifest } from '../oci/schemas.js';
import { globMatch } from './glob.js';
import { ruleName, type Rule } from './policy.js';
import type { Finding } from './types.js';

/**
 * A rule's `hub.allow`: the upstream Hugging Face repositories whose revisions the rule
 * admits. The Hub pull-through refuses to fetch any other (request-level, src/hub), and
 * the gate denies any other already stored, over the Hub API and OCI alike: a revision
 * imported before the list changed is judged by the list of today.
 */
export const HUB_UPSTREAM_ANNOTATION = 'dev.customs.hub.upstream';
export const HUB_REPOSITORY_ANNOTATION = 'dev.customs.hub.repository';

/** Does `hub.allow` admit the upstream repo id (`org/model`)? Globs as for repositories, case-insensitive. */
export function hubAllows(allow: readonly string[] | undefined, repoId: string): boolean {
  if (!allow) return true;
  const id = repoId.toLowerCase();
  return allow.some((g) => globMatch(g.toLowerCase(), id));
}

export function hubOriginFindings(rule: Rule, manifest: ImageManifest | undefined): Finding[] {
  const allow = rule.hub?.allow;
  if (!allow) return [];
  const name = ruleName(rule);
  const repoId = manifest?.annotations?.[HUB_REPOSITORY_ANNOTATION];
  if (repoId === undefined) return [{ rule: name, check: 'hub', ok: false, reason: `not a revision imported from a Hub upstream (no ${HUB_REPOSITORY_ANNOTATION}); hub.allow admits only those` }];
  const upstream = manifest?.annotations?.[HUB_UPSTREAM_ANNOTATION] ?? 'an upstream';
  if (!hubAllows(allow, repoId)) return [{ rule: name, check: 'hub', ok: false, reason: `${repoId} (from ${upstream}) is not in hub.allow (${allow.join(', ')})` }];
  return [{ rule: name, check: 'hub', ok: true, reason: `${repoId} (from ${upstream}) is in hub.allow` }];
}
