import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier, type TrustMaterial } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { createHash, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { certLabel, certMatchesIdentity, derToCert, isP256OrNonEc, pae, verifyChain, verifyWithKey } from './crypto.js';
import { combine, evidenceId, guarded, outsideRestriction, rejected, type Outcome, type Signed, type SubjectContext } from './evidence.js';
import { parseStatement, subjectMismatch, type Statement } from './statement.js';
import type { ResolvedAuthority, TrustedKey } from './trust.js';

export const SIGSTORE_BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
export const isSigstoreBundleType = (mt: string | undefined): boolean =>
  mt !== undefined && mt.startsWith('application/vnd.dev.sigstore.bundle') && mt.includes('json');

const FORMAT = 'sigstore bundle';

/** The raw JSON fields our own verification path needs (P-384 keys, x509 chains). */
const rawBundleSchema = z.looseObject({
  mediaType: z.string(),
  verificationMaterial: z.looseObject({
    certificate: z.looseObject({ rawBytes: z.string() }).optional(),
    x509CertificateChain: z.looseObject({ certificates: z.array(z.looseObject({ rawBytes: z.string() })).min(1) }).optional(),
  }),
  messageSignature: z
    .looseObject({ messageDigest: z.looseObject({ algorithm: z.string(), digest: z.string() }), signature: z.string() })
    .optional(),
  dsseEnvelope: z
    .looseObject({ payload: z.string(), payloadType: z.string(), signatures: z.array(z.looseObject({ sig: z.string() })).min(1) })
    .optional(),
});
type RawBundle = z.infer<typeof rawBundleSchema>;

const EMPTY_ROOT = toTrustMaterial(TrustedRoot.fromJSON({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' }));

/**
 * Verifies one sigstore bundle (a referrer's layer blob) against the rule's authorities.
 * @sigstore/verify checks signature, certificate chain, tlog and timestamps; we add what it
 * does not: the message digest and every statement subject bound to the served manifest,
 * anchored identity regexes, distinct tlog entries, and P-384 keys with SHA-384.
 */
export function verifySigstoreBundle(blob: Buffer, ctx: SubjectContext): Outcome[] {
  return guarded(FORMAT, () => {
    const json = JSON.parse(blob.toString('utf8')) as unknown;
    const raw = rawBundleSchema.parse(json);
    if (!raw.mediaType.startsWith('application/vnd.dev.sigstore.bundle')) throw new Error(`not a sigstore bundle: ${raw.mediaType}`);
    // Bind before judging signatures: a message signature must be over these very bytes.
    let statement: Statement | undefined;
    let payload: Buffer | undefined;
    let sig: Buffer;
    if (raw.messageSignature) {
      const md = raw.messageSignature.messageDigest;
      const want = createHash('sha256').update(ctx.bytes).digest();
      if (md.algorithm !== 'SHA2_256' || !Buffer.from(md.digest, 'base64').equals(want) || createDigest(ctx.bytes) !== ctx.digest) {
        return [rejected(FORMAT, `message signature digest does not match the served manifest ${ctx.digest}`)];
      }
      sig = Buffer.from(raw.messageSignature.signature, 'base64');
    } else if (raw.dsseEnvelope) {
      const env = raw.dsseEnvelope;
      if (env.signatures.length !== 1) throw new Error(`DSSE envelope has ${env.signatures.length} signatures; exactly one is supported`);
      payload = Buffer.from(env.payload, 'base64');
      sig = Buffer.from(env.signatures[0]!.sig, 'base64');
      statement = parseStatement(env.payloadType, payload);
      const mismatch = subjectMismatch(statement, ctx.digest, ctx.manifest);
      if (mismatch) return [rejected(FORMAT, mismatch)];
    } else throw new Error('bundle has neither messageSignature nor dsseEnvelope');

    let bundle: Bundle | undefined;
    let bundleError: string | undefined;
    try {
      bundle = dedupeTlog(bundleFromJSON(json));
    } catch (e) {
      // e.g. v0.3 bundles carrying x509CertificateChain (model-signing certificate sets).
      bundleError = `invalid bundle: ${(e as Error).message}`;
    }
    const out: Signed[] = [];
    const failures: string[] = [];
    const ev = evidenceId(sig);
    const ok = (a: ResolvedAuthority, signer: string): void => {
      out.push({ ok: true, format: FORMAT, authority: a.id, signer, evidence: ev, ...(statement ? { statement } : {}) });
    };
    const hasCert = raw.verificationMaterial.certificate !== undefined || raw.verificationMaterial.x509CertificateChain !== undefined;
    for (const a of ctx.authorities) {
      try {
        if (a.kind === 'keys') {
          if (hasCert) continue;
          const restricted = outsideRestriction(a, statement);
          if (restricted) {
            failures.push(restricted);
            continue;
          }
          const k = verifyKeyBased(a, raw, bundle, bundleError, ctx.bytes, payload, sig);
          if (typeof k === 'string') failures.push(`${a.label}: ${k}`);
          else ok(a, `key sha256:${k.fingerprint.slice(0, 16)}`);
        } else if (a.kind === 'keyless') {
          if (!hasCert) continue;
          if (!bundle) {
            failures.push(`${a.label}: ${bundleError}`);
            continue;
          }
          const signer = new Verifier(a.root.material, {
            tlogThreshold: a.tlogThreshold,
            timestampThreshold: a.timestampThreshold,
            ctlogThreshold: a.ctlogThreshold,
          }).verify(toSignedEntity(bundle, ctx.bytes));
          const san = signer.identity?.subjectAlternativeName;
          const issuer = signer.identity?.extensions?.issuer;
          if (issuer !== a.issuer) failures.push(`${a.label}: issuer ${issuer ?? '(none)'} is not ${a.issuer}`);
          else if (san === undefined || (a.subject !== undefined ? san !== a.subject : !a.subjectRegex!.test(san)))
            failures.push(`${a.label}: identity ${san ?? '(none)'} does not match`);
          else ok(a, `${san} (${issuer})`);
        } else {
          if (!hasCert) continue;
          const r = verifyX509(a, raw, ctx, payload, sig);
          if (typeof r === 'string') failures.push(`${a.label}: ${r}`);
          else ok(a, certLabel(r));
        }
      } catch (e) {
        failures.push(`${a.label}: ${(e as Error).message}`);
      }
    }
    return out.length > 0 ? out : [combine(FORMAT, failures)];
  });
}

const createDigest = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The same tlog entry twice must not satisfy a threshold of two. */
function dedupeTlog(b: Bundle): Bundle {
  const seen = new Set<string>();
  const entries = b.verificationMaterial.tlogEntries.filter((e) => {
    const k = `${Buffer.from(e.logId?.keyId ?? []).toString('hex')}:${e.logIndex}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return { ...b, verificationMaterial: { ...b.verificationMaterial, tlogEntries: entries } } as Bundle;
}

/** Key-based bundles: @sigstore/verify for P-256/RSA/Ed25519, node:crypto for P-384/P-521. */
function verifyKeyBased(
  a: Extract<ResolvedAuthority, { kind: 'keys' }>,
  raw: RawBundle,
  bundle: Bundle | undefined,
  bundleError: string | undefined,
  manifest: Buffer,
  payload: Buffer | undefined,
  sig: Buffer,
): TrustedKey | string {
  if (a.keys.length === 0) return 'no keys in the trust store';
  const reasons = new Set<string>();
  for (const k of a.keys) {
    if (isP256OrNonEc(k.key)) {
      if (!bundle) return bundleError!;
      // Without a root the log entries cannot be checked; they are then not evidence at all.
      const b = a.root
        ? bundle
        : ({ ...bundle, verificationMaterial: { ...bundle.verificationMaterial, tlogEntries: [], timestampVerificationData: undefined } } as Bundle);
      const material: TrustMaterial = { ...(a.root?.material ?? EMPTY_ROOT), publicKey: () => ({ publicKey: k.key, validFor: () => true }) };
      try {
        new Verifier(material, { tlogThreshold: a.tlogThreshold, timestampThreshold: a.timestampThreshold, ctlogThreshold: 0 }).verify(
          toSignedEntity(b, manifest),
        );
        return k;
      } catch (e) {
        reasons.add((e as Error).message);
      }
    } else {
      if (a.tlogThreshold > 0 || a.timestampThreshold > 0) {
        reasons.add('tlog/timestamp thresholds are not supported for P-384/P-521 keys');
        continue;
      }
      const data = payload !== undefined ? pae(raw.dsseEnvelope!.payloadType, payload) : manifest;
      if (verifyWithKey(k.key, data, sig)) return k;
      reasons.add('signature verification failed');
    }
  }
  return [...reasons].join(', ');
}

/** Certificate chains to a private trust store (model-signing certificate sets, enterprise PKI). */
function verifyX509(
  a: Extract<ResolvedAuthority, { kind: 'x509' }>,
  raw: RawBundle,
  ctx: SubjectContext,
  payload: Buffer | undefined,
  sig: Buffer,
): X509Certificate | string {
  const vm = raw.verificationMaterial;
  const chain = vm.x509CertificateChain ? vm.x509CertificateChain.certificates.map((c) => derToCert(c.rawBytes)) : [derToCert(vm.certificate!.rawBytes)];
  const leaf = chain[0]!;
  const bad = verifyChain(chain, a.roots, ctx.now);
  if (bad) return bad;
  if (a.subject !== undefined && !certMatchesIdentity(leaf, a.subject)) return `certificate identity ${certLabel(leaf)} is not ${a.subject}`;
  const data = payload !== undefined ? pae(raw.dsseEnvelope!.payloadType, payload) : ctx.bytes;
  return verifyWithKey(leaf.publicKey, data, sig) ? leaf : 'signature verification failed';
}
