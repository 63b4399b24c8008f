import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { err } from '../oci/index.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * An upstream's `tls.caFile`: a PEM bundle of CAs trusted for that upstream only
 * (a company registry behind a private CA), in addition to Node's bundled roots.
 * Read and checked once at startup, so a wrong path or a file that holds no
 * certificate stops the server with a message instead of failing every pull.
 * A relative path is taken from the config file's directory.
 */
export function readUpstreamCa(upstream: string, caFile: string, configDir?: string): string {
  const path = isAbsolute(caFile) || !configDir ? caFile : resolve(configDir, caFile);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw err('UNSUPPORTED', `upstream ${upstream}: cannot read tls.caFile ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const certs = text.match(PEM_CERT) ?? [];
  if (certs.length === 0) throw err('UNSUPPORTED', `upstream ${upstream}: tls.caFile ${path} holds no PEM certificate`);
  certs.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (e) {
      throw err('UNSUPPORTED', `upstream ${upstream}: certificate ${i + 1} in tls.caFile ${path} is not valid: ${(e as Error).message}`);
    }
  });
  return certs.join('\n');
}

/**
 * The CAs of NODE_EXTRA_CA_CERTS. Node adds them to its default store only, and an
 * upstream with its own `tls.caFile` gets a context of its own, so they are added
 * there too: a CA trusted for the whole process stays trusted for every upstream.
 * An unreadable file is left to Node, which warns about it at startup.
 */
export function processExtraCas(env: NodeJS.ProcessEnv = process.env): string[] {
  const file = env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return readFileSync(file, 'utf8').match(PEM_CERT) ?? [];
  } catch {
    return [];
  }
}
