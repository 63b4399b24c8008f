import { isRegistryError } from '../oci/index.js';

/**
 * What every command prints when it fails: `error: <message>` (the message carries the server's
 * code and reason, see src/oci/wire-error.ts), then the detail for people: a list one item per
 * line, the gate's failed rules one per line, anything else as indented JSON. Never a stack.
 */
export function errorLines(e: unknown): string[] {
  const lines = [`error: ${(e as Error)?.message ?? String(e)}`];
  if (!isRegistryError(e) || e.detail === undefined || e.detail === null) return lines;
  return [...lines, ...detailLines(e.detail)];
}

function detailLines(detail: unknown): string[] {
  if (typeof detail === 'string') return detail.split('\n').map((l) => `  ${l}`);
  if (Array.isArray(detail) && detail.every((d) => typeof d === 'string')) return (detail as string[]).map((l) => `  ${l}`);
  const failed = (detail as { failed?: unknown }).failed;
  if (Array.isArray(failed) && failed.every((f) => typeof f === 'object' && f !== null && 'reason' in f)) {
    return (failed as { rule?: string; check?: string; reason: string }[]).map((f) => `  FAIL ${[f.rule, f.check].filter(Boolean).join('/')}: ${f.reason}`);
  }
  return JSON.stringify(detail, null, 2)
    .split('\n')
    .map((l) => `  ${l}`);
}
