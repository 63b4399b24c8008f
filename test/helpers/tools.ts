import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where scripts/test-deps.sh put the pinned test tools (scripts/deps/tools-dir.sh computes the same):
 * Go clients in bin/, the Python virtual environment in venv/.
 */
export const TOOLS_DIR =
  process.env.CUSTOMS_TOOLS_DIR ?? (existsSync('/var/cache/customs-tools') ? '/var/cache/customs-tools' : join(homedir(), '.cache', 'customs-tools'));

/** A pinned Go client (oras, crane, regctl, cosign, notation, conformance.test). */
export function goTool(name: string): string {
  const p = join(TOOLS_DIR, 'bin', name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run bash scripts/test-deps.sh`);
  return p;
}

/** A program of the pinned Python virtual environment (python, model_signing, fickling, ...). */
export function venvTool(name: string): string {
  const p = join(TOOLS_DIR, 'venv', 'bin', name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run bash scripts/test-deps.sh`);
  return p;
}
