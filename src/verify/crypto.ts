import { verify as nodeVerify, X509Certificate, type KeyObject } from 'node:crypto';

/** DSSE pre-authentication encoding (DSSE v1 spec, "Protocol"). */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const t = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), payload]);
}

/**
 * The hash a key signs with. ECDSA follows its curve (P-384 with SHA-384, as model-signing
 * does; @sigstore/verify uses SHA-256 for every DSSE key and so rejects those bundles).
 */
export function hashFor(key: KeyObject): string | null {
  if (key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448') return null;
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'secp384r1') return 'sha384';
    if (curve === 'secp521r1') return 'sha512';
  }
  return 'sha256';
}

export function verifyWithKey(key: KeyObject, data: Buffer, sig: Buffer): boolean {
  try {
    return nodeVerify(hashFor(key), data, key, sig);
  } catch {
    return false;
  }
}

export const isP256OrNonEc = (key: KeyObject): boolean => hashFor(key) === 'sha256' || hashFor(key) === null;

/**
 * Verifies `chain` (leaf first, optional intermediates) up to one of `roots`, at time `at`.
 * Returns undefined when valid, else the reason. Only signatures, issuer names and validity
 * windows are checked: no revocation (nothing to ask offline).
 */
export function verifyChain(chain: X509Certificate[], roots: X509Certificate[], at: Date): string | undefined {
  if (chain.length === 0) return 'no certificate';
  const within = (c: X509Certificate): boolean => new Date(c.validFrom) <= at && at <= new Date(c.validTo);
  let cur = chain[0]!;
  if (!within(cur)) return `certificate ${cur.subject.replace(/\n/g, ',')} not valid at ${at.toISOString()} (${cur.validFrom} - ${cur.validTo})`;
  const pool = chain.slice(1);
  for (let depth = 0; depth < 10; depth++) {
    const root = roots.find((r) => r.raw.equals(cur.raw) || (cur.checkIssued(r) && cur.verify(r.publicKey)));
    if (root) return within(root) ? undefined : `trust anchor ${root.subject.replace(/\n/g, ',')} not valid at ${at.toISOString()}`;
    const next = pool.find((c) => cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!next) return `certificate ${cur.subject.replace(/\n/g, ',')} does not chain to a trusted root`;
    if (!next.ca) return `intermediate ${next.subject.replace(/\n/g, ',')} is not a CA`;
    if (!within(next)) return `intermediate ${next.subject.replace(/\n/g, ',')} not valid at ${at.toISOString()}`;
    cur = next;
  }
  return 'certificate chain too long';
}

/** Exact identity match against the subject DN or any SAN value (email, URI, DNS). */
export function certMatchesIdentity(cert: X509Certificate, identity: string): boolean {
  const san = (cert.subjectAltName ?? '').split(/,\s*/).map((s) => s.replace(/^[A-Za-z ]+:/, ''));
  const dn = cert.subject.replace(/\n/g, ',');
  return san.includes(identity) || dn === identity || cert.subject.split('\n').some((p) => p === identity);
}

export const certLabel = (cert: X509Certificate): string => cert.subjectAltName ?? cert.subject.replace(/\n/g, ',');

export function derToCert(b64: string): X509Certificate {
  return new X509Certificate(Buffer.from(b64, 'base64'));
}
