import { constants, verify as nodeVerify, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { certLabel, certMatchesIdentity, verifyChain } from './crypto.js';
import { combine, evidenceId, guarded, rejected, type Outcome, type Signed, type SubjectContext } from './evidence.js';

/**
 * Notary Project signatures (notation): an OCI referrer with artifactType
 * `application/vnd.cncf.notary.signature` whose layer is a JWS (JSON serialization).
 * Verified with node:crypto against an x509 trust store; `io.cncf.notary.expiry` is honoured.
 * COSE envelopes are recognised and refused (no COSE verifier here yet).
 */
export const NOTATION_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
export const JWS_MEDIA_TYPE = 'application/jose+json';
export const COSE_MEDIA_TYPE = 'application/cose';
const FORMAT = 'notation signature';

const b64url = z.string().regex(/^[A-Za-z0-9_-]*={0,2}$/, 'must be base64url');
const jwsSchema = z.looseObject({
  payload: b64url,
  protected: b64url,
  signature: b64url,
  header: z.looseObject({ x5c: z.array(z.string()).min(1) }),
});

const KNOWN_CRIT = new Set(['io.cncf.notary.signingScheme', 'io.cncf.notary.expiry', 'io.cncf.notary.authenticSigningTime', 'io.cncf.notary.verificationPlugin', 'io.cncf.notary.verificationPluginMinVersion']);
const protectedSchema = z.looseObject({
  alg: z.enum(['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512']),
  cty: z.literal('application/vnd.cncf.notary.payload.v1+json'),
  crit: z.array(z.string()).min(1),
  'io.cncf.notary.signingScheme': z.enum(['notary.x509', 'notary.x509.signingAuthority']),
  'io.cncf.notary.expiry': z.string().optional(),
  'io.cncf.notary.signingTime': z.string().optional(),
  'io.cncf.notary.authenticSigningTime': z.string().optional(),
  'io.cncf.notary.verificationPlugin': z.string().optional(),
});

const payloadSchema = z.looseObject({
  targetArtifact: z.looseObject({ mediaType: z.string(), digest: z.string(), size: z.number().int() }),
});

const fromB64url = (s: string): Buffer => Buffer.from(s, 'base64url');

export function verifyNotationJws(blob: Buffer, ctx: SubjectContext & { mediaType?: string }): Outcome[] {
  return guarded(FORMAT, () => {
    const jws = jwsSchema.parse(JSON.parse(blob.toString('utf8')));
    const header = protectedSchema.parse(JSON.parse(fromB64url(jws.protected).toString('utf8')));
    for (const c of header.crit) if (!KNOWN_CRIT.has(c)) return [rejected(FORMAT, `unsupported critical header ${c}`)];
    if (!header.crit.includes('io.cncf.notary.signingScheme')) return [rejected(FORMAT, 'signingScheme is not marked critical')];
    if (header['io.cncf.notary.expiry'] !== undefined && !header.crit.includes('io.cncf.notary.expiry')) return [rejected(FORMAT, 'expiry is not marked critical')];
    if (header['io.cncf.notary.verificationPlugin'] !== undefined) return [rejected(FORMAT, 'signatures that need a verification plugin are not supported')];
    const expiry = header['io.cncf.notary.expiry'];
    if (expiry !== undefined) {
      const t = new Date(expiry);
      if (Number.isNaN(t.getTime())) return [rejected(FORMAT, `invalid expiry ${expiry}`)];
      if (t <= ctx.now) return [rejected(FORMAT, `signature expired at ${t.toISOString()}`)];
    }
    const target = payloadSchema.parse(JSON.parse(fromB64url(jws.payload).toString('utf8'))).targetArtifact;
    if (target.digest !== ctx.digest) return [rejected(FORMAT, `signed target ${target.digest} does not match the served manifest ${ctx.digest}`)];
    if (target.size !== ctx.bytes.length) return [rejected(FORMAT, `signed target size ${target.size} is not the manifest's ${ctx.bytes.length}`)];
    if (ctx.mediaType !== undefined && target.mediaType !== ctx.mediaType) return [rejected(FORMAT, `signed media type ${target.mediaType} is not ${ctx.mediaType}`)];

    const chain = jws.header.x5c.map((c) => new X509Certificate(Buffer.from(c, 'base64')));
    const leaf = chain[0]!;
    const signingInput = Buffer.from(`${jws.protected}.${jws.payload}`, 'ascii');
    const sig = fromB64url(jws.signature);
    if (!verifyJwsSignature(header.alg, leaf, signingInput, sig)) return [rejected(FORMAT, 'signature verification failed')];
    // signingAuthority: the chain must have been valid when the signature was made (authentic time);
    // notary.x509: the signing time is self-asserted, so the chain must be valid now.
    const at = header['io.cncf.notary.signingScheme'] === 'notary.x509.signingAuthority' && header['io.cncf.notary.authenticSigningTime']
      ? new Date(header['io.cncf.notary.authenticSigningTime'])
      : ctx.now;
    const out: Signed[] = [];
    const failures: string[] = [];
    for (const a of ctx.authorities) {
      if (a.kind !== 'x509') continue;
      const bad = verifyChain(chain, a.roots, at);
      if (bad) failures.push(`${a.label}: ${bad}`);
      else if (a.subject !== undefined && !certMatchesIdentity(leaf, a.subject)) failures.push(`${a.label}: signer ${certLabel(leaf)} is not ${a.subject}`);
      else out.push({ ok: true, format: FORMAT, authority: a.id, signer: certLabel(leaf), evidence: evidenceId(sig) });
    }
    return out.length > 0 ? out : [combine(FORMAT, failures.length ? failures : ['no x509 trust store in the rule'])];
  });
}

function verifyJwsSignature(alg: string, leaf: X509Certificate, data: Buffer, sig: Buffer): boolean {
  const hash = `sha${alg.slice(2)}`;
  try {
    if (alg.startsWith('PS')) {
      if (leaf.publicKey.asymmetricKeyType !== 'rsa' && leaf.publicKey.asymmetricKeyType !== 'rsa-pss') return false;
      return nodeVerify(hash, data, { key: leaf.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 }, sig);
    }
    if (leaf.publicKey.asymmetricKeyType !== 'ec') return false;
    return nodeVerify(hash, data, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}
