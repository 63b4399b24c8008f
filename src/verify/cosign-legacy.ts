import { X509Certificate as SigstoreCert } from '@sigstore/core';
import { createHash, createPublicKey, verify as nodeVerify, X509Certificate, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { certLabel, certMatchesIdentity, pae, verifyChain, verifyWithKey } from './crypto.js';
import { combine, evidenceId, guarded, outsideRestriction, rejected, type Outcome, type Signed, type SubjectContext } from './evidence.js';
import { canonicalJson } from './policy.js';
import { parseStatement, subjectMismatch, type Statement } from './statement.js';
import { parseJsonNoDuplicates } from './strict-json.js';
import type { ResolvedAuthority, SigstoreRoot } from './trust.js';

/**
 * cosign's tag-based scheme: a `sha256-<hex>.sig` manifest whose layers are simple-signing
 * payloads signed in the `dev.cosignproject.cosign/signature` annotation, and `.att`
 * manifests whose layers are DSSE envelopes. containers/image's policy_eval_sigstore.go
 * is the reference for the checks below.
 */
export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const DSSE_LAYER = 'application/vnd.dsse.envelope.v1+json';
const A_SIG = 'dev.cosignproject.cosign/signature';
const A_CERT = 'dev.sigstore.cosign/certificate';
const A_CHAIN = 'dev.sigstore.cosign/chain';
const A_BUNDLE = 'dev.sigstore.cosign/bundle';
const FORMAT = 'cosign signature';
const ATT_FORMAT = 'cosign attestation';

export interface LegacyLayer {
  readonly mediaType: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly blob: Buffer;
}

const simpleSigningSchema = z.looseObject({
  critical: z.looseObject({
    identity: z.looseObject({ 'docker-reference': z.string() }),
    image: z.looseObject({ 'docker-manifest-digest': z.string() }),
    type: z.literal('cosign container image signature'),
  }),
});

/** One `.sig` layer: simple-signing payload bound exactly to the served digest. */
export function verifyCosignSignatureLayer(layer: LegacyLayer, ctx: SubjectContext): Outcome[] {
  return guarded(FORMAT, () => {
    if (layer.mediaType !== SIMPLE_SIGNING) return [rejected(FORMAT, `layer is ${layer.mediaType}, not a cosign signature`)];
    const payload = simpleSigningSchema.parse(parseJsonNoDuplicates(layer.blob.toString('utf8')));
    const signed = payload.critical.image['docker-manifest-digest'];
    // Exact string equality: no case folding, no algorithm aliasing.
    if (signed !== ctx.digest) return [rejected(FORMAT, `signed digest ${signed} does not match the served manifest ${ctx.digest}`)];
    const sigB64 = layer.annotations[A_SIG];
    if (!sigB64) return [rejected(FORMAT, `layer has no ${A_SIG} annotation`)];
    return verifyAgainst(FORMAT, layer, layer.blob, Buffer.from(sigB64.replace(/\s+/g, ''), 'base64'), ctx);
  });
}

const envelopeSchema = z.looseObject({
  payloadType: z.string(),
  payload: z.string(),
  signatures: z.array(z.looseObject({ sig: z.string(), keyid: z.string().nullish() })).min(1),
});

/** One `.att` layer: a DSSE envelope holding an in-toto statement about the served digest. */
export function verifyCosignAttestationLayer(layer: LegacyLayer, ctx: SubjectContext): Outcome[] {
  return guarded(ATT_FORMAT, () => {
    if (layer.mediaType !== DSSE_LAYER) return [rejected(ATT_FORMAT, `layer is ${layer.mediaType}, not a DSSE envelope`)];
    const env = envelopeSchema.parse(JSON.parse(layer.blob.toString('utf8')));
    const payload = Buffer.from(env.payload, 'base64');
    const statement = parseStatement(env.payloadType, payload);
    const mismatch = subjectMismatch(statement, ctx.digest, ctx.manifest);
    if (mismatch) return [rejected(ATT_FORMAT, mismatch)];
    const data = pae(env.payloadType, payload);
    // Several signatures on one envelope: each is a chance to match an authority, counted once per authority.
    const all: Outcome[] = [];
    for (const s of env.signatures) all.push(...verifyAgainst(ATT_FORMAT, layer, data, Buffer.from(s.sig, 'base64'), ctx, statement));
    const ok = all.filter((o): o is Signed => o.ok);
    return ok.length > 0 ? ok : [combine(ATT_FORMAT, all.map((o) => (o.ok ? '' : o.reason)))];
  });
}

function verifyAgainst(format: string, layer: LegacyLayer, data: Buffer, sig: Buffer, ctx: SubjectContext, statement?: Statement): Outcome[] {
  const certPem = layer.annotations[A_CERT];
  const chainPem = layer.annotations[A_CHAIN] ?? '';
  const cert = certPem ? new X509Certificate(certPem) : undefined;
  const chain = cert ? [cert, ...pems(chainPem).map((p) => new X509Certificate(p))] : [];
  const out: Signed[] = [];
  const failures: string[] = [];
  const ev = evidenceId(sig);
  const ok = (a: ResolvedAuthority, signer: string): void => {
    out.push({ ok: true, format, authority: a.id, signer, evidence: ev, ...(statement ? { statement } : {}) });
  };
  for (const a of ctx.authorities) {
    try {
      if (a.kind === 'keys') {
        if (cert) continue;
        const restricted = outsideRestriction(a, statement);
        if (restricted) {
          failures.push(restricted);
          continue;
        }
        const k = a.keys.find((k) => verifyWithKey(k.key, data, sig));
        if (!k) {
          failures.push(`${a.label}: signature does not verify with ${a.keys.length === 0 ? 'any key (none trusted)' : 'any trusted key'}`);
          continue;
        }
        if (a.tlogThreshold > 0) {
          const bad = checkRekor(layer, a.root, sig, data, k.key.export({ type: 'spki', format: 'pem' }).toString());
          if (typeof bad === 'string') {
            failures.push(`${a.label}: ${bad}`);
            continue;
          }
        }
        ok(a, `key sha256:${k.fingerprint.slice(0, 16)}`);
      } else if (a.kind === 'x509') {
        if (!cert) continue;
        const bad = verifyChain(chain, a.roots, ctx.now);
        if (bad) failures.push(`${a.label}: ${bad}`);
        else if (a.subject !== undefined && !certMatchesIdentity(cert, a.subject)) failures.push(`${a.label}: certificate identity ${certLabel(cert)} is not ${a.subject}`);
        else if (!verifyWithKey(cert.publicKey, data, sig)) failures.push(`${a.label}: signature verification failed`);
        else ok(a, certLabel(cert));
      } else {
        if (!cert) continue;
        const r = verifyKeyless(a, layer, cert, chain, data, sig);
        if ('failure' in r) failures.push(`${a.label}: ${r.failure}`);
        else ok(a, r.signer);
      }
    } catch (e) {
      failures.push(`${a.label}: ${(e as Error).message}`);
    }
  }
  return out.length > 0 ? out : [combine(format, failures)];
}

/** Fulcio certificate + Rekor SET: the certificate must have been valid when the log saw the signature. */
function verifyKeyless(a: Extract<ResolvedAuthority, { kind: 'keyless' }>, layer: LegacyLayer, cert: X509Certificate, chain: X509Certificate[], data: Buffer, sig: Buffer): { signer: string } | { failure: string } {
  const fail = (failure: string) => ({ failure });
  const rekor = checkRekor(layer, a.root, sig, data, cert.toString());
  if (typeof rekor === 'string') {
    if (a.tlogThreshold > 0) return fail(rekor);
  }
  // Without a log entry the only time we have is now, and Fulcio certificates live ten minutes.
  const at = typeof rekor === 'string' ? new Date() : rekor;
  const bad = verifyChain(chain, caCerts(a.root), at);
  if (bad) return fail(bad);
  if (!verifyWithKey(cert.publicKey, data, sig)) return fail('signature verification failed');
  const sc = SigstoreCert.parse(cert.raw);
  const san = sc.subjectAltName;
  const issuer = fulcioIssuer(sc);
  if (issuer !== a.issuer) return fail(`issuer ${issuer ?? '(none)'} is not ${a.issuer}`);
  if (san === undefined || (a.subject !== undefined ? san !== a.subject : !a.subjectRegex!.test(san))) return fail(`identity ${san ?? '(none)'} does not match`);
  return { signer: `${san} (${issuer})` };
}

function fulcioIssuer(cert: SigstoreCert): string | undefined {
  const v2 = cert.extension('1.3.6.1.4.1.57264.1.8');
  if (v2) return v2.valueObj.subs?.[0]?.value.toString('ascii');
  return cert.extension('1.3.6.1.4.1.57264.1.1')?.value.toString('ascii');
}

const caCache = new WeakMap<SigstoreRoot, X509Certificate[]>();
function caCerts(root: SigstoreRoot): X509Certificate[] {
  let certs = caCache.get(root);
  if (!certs) {
    certs = root.material.certificateAuthorities.flatMap((ca) => ca.certChain.map((c) => new X509Certificate(c.root.toDER())));
    caCache.set(root, certs);
  }
  return certs;
}

const setSchema = z.looseObject({
  SignedEntryTimestamp: z.string(),
  Payload: z.looseObject({ body: z.string(), integratedTime: z.number().int(), logIndex: z.number().int(), logID: z.string() }),
});

/**
 * Rekor's signed entry timestamp over the canonical JSON of {body, integratedTime, logID, logIndex},
 * and a hashedrekord body that names this very signature, payload hash and signer.
 * Returns the integrated time, or why the entry does not count.
 */
function checkRekor(layer: LegacyLayer, root: SigstoreRoot | undefined, sig: Buffer, data: Buffer, signerPem: string): Date | string {
  if (!root) return 'no trusted root to verify the Rekor entry with';
  const raw = layer.annotations[A_BUNDLE];
  if (!raw) return `no Rekor bundle (${A_BUNDLE}) on the signature`;
  const set = setSchema.parse(JSON.parse(raw));
  const p = set.Payload;
  const log = root.material.tlogs.find((t) => t.logID.toString('hex') === p.logID);
  if (!log) return `Rekor log ${p.logID.slice(0, 16)}... is not in the trusted root`;
  const canon = Buffer.from(canonicalJson({ body: p.body, integratedTime: p.integratedTime, logID: p.logID, logIndex: p.logIndex }));
  if (!nodeVerify('sha256', canon, log.publicKey, Buffer.from(set.SignedEntryTimestamp, 'base64'))) return 'Rekor SET signature invalid';
  const at = new Date(p.integratedTime * 1000);
  if (at < log.validFor.start || at > log.validFor.end) return 'Rekor entry outside the log key validity';
  const body = JSON.parse(Buffer.from(p.body, 'base64').toString('utf8')) as {
    kind?: string;
    spec?: { data?: { hash?: { algorithm?: string; value?: string } }; signature?: { content?: string; publicKey?: { content?: string } } };
  };
  if (body.kind !== 'hashedrekord') return `Rekor entry kind ${body.kind ?? '(none)'} is not hashedrekord`;
  const spec = body.spec ?? {};
  if (spec.data?.hash?.algorithm !== 'sha256' || spec.data.hash.value !== createHash('sha256').update(data).digest('hex')) return 'Rekor entry is for another payload';
  if (!Buffer.from(spec.signature?.content ?? '', 'base64').equals(sig)) return 'Rekor entry is for another signature';
  const logged = Buffer.from(spec.signature?.publicKey?.content ?? '', 'base64').toString('utf8');
  if (!samePublicMaterial(logged, signerPem)) return 'Rekor entry names another signer';
  return at;
}

function samePublicMaterial(a: string, b: string): boolean {
  try {
    const ka: KeyObject = a.includes('CERTIFICATE') ? new X509Certificate(a).publicKey : createPublicKey(a);
    const kb: KeyObject = b.includes('CERTIFICATE') ? new X509Certificate(b).publicKey : createPublicKey(b);
    return ka.export({ type: 'spki', format: 'der' }).equals(kb.export({ type: 'spki', format: 'der' }));
  } catch {
    return false;
  }
}

const pems = (s: string): string[] => s.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
