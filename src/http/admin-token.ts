import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AuthConfig } from '../config/auth.js';
import { hashSecret, newTokenSecret, parseApiToken } from './secrets.js';

/**
 * A fresh install is usable and never open: with no users or tokens configured,
 * the first start writes an admin token to <data>/admin-token (mode 0600). Only
 * its hash stays in memory; the token itself is never logged.
 */
export async function loadAdminToken(dataDir: string, auth: AuthConfig, log: Logger): Promise<string | undefined> {
  const file = join(dataDir, 'admin-token');
  const existing = await readFile(file, 'utf8').then((t) => t.trim(), () => undefined);
  if (existing !== undefined) {
    const parsed = parseApiToken(existing);
    if (!parsed || parsed.id !== 'admin') throw new Error(`${file} does not hold an admin token (ctk_admin_...)`);
    return hashSecret(parsed.secret);
  }
  if (auth.users.length > 0 || auth.tokens.length > 0) return undefined;
  const secret = newTokenSecret();
  await writeFile(file, `ctk_admin_${secret}\n`, { mode: 0o600, flag: 'wx' });
  log.warn({ file }, 'no users configured: created an admin token; use it as CUSTOMS_TOKEN (or as the password for any username)');
  return hashSecret(secret);
}

/** The HMAC key for issued bearer tokens: configured (shared by replicas) or <data>/session-key. */
export async function loadSessionKey(dataDir: string, auth: AuthConfig): Promise<Buffer> {
  const file = auth.sessionKeyFile ?? join(dataDir, 'session-key');
  const existing = await readFile(file).catch(() => undefined);
  if (existing && existing.length >= 32) return existing;
  if (auth.sessionKeyFile) throw new Error(`session key file ${file} is missing or shorter than 32 bytes`);
  const key = randomBytes(32);
  await writeFile(file, key, { mode: 0o600 });
  return key;
}
