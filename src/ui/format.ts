/** Formatting for the console's pages: UTC times, binary sizes, short digests, query strings. */

export function formatTime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function formatSize(bytes: number | undefined): string {
  if (bytes === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** `sha256:0123456789ab` (algorithm and the first 12 hex digits): enough to tell digests apart on a page. */
export const shortDigest = (d: string | undefined): string => {
  if (!d) return '';
  const i = d.indexOf(':');
  return i < 0 ? d.slice(0, 16) : `${d.slice(0, i + 1)}${d.slice(i + 1, i + 13)}`;
};

/** `/ui/<path>?k=v&...` with undefined and empty values left out. */
export function href(path: string, params: Record<string, string | number | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `/ui/${path}${s ? `?${s}` : ''}`;
}

export const artifactHref = (repository: string, reference: string): string => href('artifact', { repository, reference });
export const repositoryHref = (name: string): string => href('repository', { name });
export const historyHref = (repository: string, tag: string): string => href('history', { repository, tag });
export const materialHref = (material: string): string => href('lineage', { material });
export const lineageHref = (repository: string, reference: string): string => href('lineage', { repository, reference });

/** Text cut to `max` characters with an ellipsis. */
export const clip = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

/** A run's time span as provenance states it (either end may be missing). */
export const ranText = (started: string | undefined, finished: string | undefined): string =>
  started && finished ? `${started} to ${finished}` : finished ? `finished ${finished}` : started ? `started ${started}` : 'not stated';
