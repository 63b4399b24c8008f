import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** `<parent>/data` with each public key trusted in `trust/keys/` (what `customs keygen --data` leaves). */
export async function dataDirTrusting(parent: string, keys: Record<string, string>): Promise<string> {
  const data = join(parent, 'data');
  await mkdir(join(data, 'trust', 'keys'), { recursive: true });
  for (const [name, pem] of Object.entries(keys)) await writeFile(join(data, 'trust', 'keys', `${name}.pub`), pem);
  return data;
}
