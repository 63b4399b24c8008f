import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { AuditInput } from './storage/ops-store.js';

/**
 * Denies and authentication failures go to the audit log, but a client retrying
 * in a loop must not flood it: one entry per (actor, action, target, reason) per
 * minute; the log line is written every time.
 */
export function refusalRecorder(audit: { record(e: AuditInput): Promise<unknown> }, log: Logger): (e: AuditInput) => void {
  const recent = new LRUCache<string, true>({ max: 10_000, ttl: 60_000 });
  return (e) => {
    const key = `${e.actor}\u0000${e.action}\u0000${e.target ?? ''}\u0000${e.reason ?? ''}`;
    if (recent.has(key)) return;
    recent.set(key, true);
    audit.record(e).catch((err: Error) => log.warn({ err: err.message, action: e.action }, 'could not record audit entry'));
  };
}
