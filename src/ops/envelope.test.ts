import { describe, expect, it } from 'vitest';
import { digestOf } from '../oci/index.js';
import { materialKind, provenanceFacts, readEnvelope, statementNames } from './envelope.js';

// Signatures are not checked here (the gate verifies them), so the envelopes carry placeholder signatures.
const key = { hint: 'aGludA==' };
const statement = (subject: { name: string; digest: Record<string, string> }, predicateType: string, predicate: unknown) => ({
  _type: 'https://in-toto.io/Statement/v1' as const,
  subject: [subject],
  predicateType,
  predicate,
});
const signDsse = (payload: Buffer, payloadType: string, _k: unknown) => ({ payload: payload.toString('base64'), payloadType, signatures: [{ sig: 'AA==', keyid: '' }] });
const signStatement = (st: unknown, k: { hint: string }) => ({
  mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  verificationMaterial: { publicKey: { hint: k.hint }, tlogEntries: [] },
  dsseEnvelope: signDsse(Buffer.from(JSON.stringify(st)), 'application/vnd.in-toto+json', k),
});
const model = digestOf('model');
const data = digestOf('data');

const v1 = statement({ name: 'm', digest: { sha256: model.slice(7) } }, 'https://slsa.dev/provenance/v1', {
  buildDefinition: {
    buildType: 'https://customs.dev/ml-training/v1',
    resolvedDependencies: [
      { uri: 'git+https://git.example/x@refs/heads/main', digest: { gitCommit: 'abc123' } },
      { name: 'ds', digest: { sha256: data.slice(7) }, annotations: { role: 'training-dataset' } },
      { name: 'base', digest: { sha256: digestOf('base').slice(7) }, annotations: { role: 'base-model' } },
      { name: 'no digest', uri: 'https://example/x' },
    ],
  },
  runDetails: { builder: { id: 'https://ci/b' }, metadata: { startedOn: '2026-01-01T00:00:00Z', finishedOn: '2026-01-01T01:00:00Z' } },
});

describe('readEnvelope', () => {
  it('reads a sigstore bundle: statement, key signer, log times', () => {
    const bundle = { ...signStatement(v1, key), verificationMaterial: { publicKey: { hint: key.hint }, tlogEntries: [{ integratedTime: '1767225600' }] } };
    const env = readEnvelope(Buffer.from(JSON.stringify(bundle)))!;
    expect(env.kind).toBe('bundle');
    expect(env.signers).toEqual([`key:${key.hint}`]);
    expect(env.loggedAt).toEqual(['2026-01-01T00:00:00.000Z']);
    expect(env.statement?.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(statementNames(env.statement!, model)).toBe(true);
    expect(statementNames(env.statement!, data)).toBe(false);
  });

  it('reads a bare DSSE envelope and a bare statement', () => {
    const dsse = { ...signDsse(Buffer.from(JSON.stringify(v1)), 'application/vnd.in-toto+json', key), signatures: [{ sig: 'AA==', keyid: 'k1' }] };
    expect(readEnvelope(Buffer.from(JSON.stringify(dsse)))).toMatchObject({ kind: 'dsse', signers: ['keyid:k1'] });
    expect(readEnvelope(Buffer.from(JSON.stringify(v1)))).toMatchObject({ kind: 'statement', signers: [] });
  });

  it('ignores what is not an in-toto statement', () => {
    expect(readEnvelope(Buffer.from('not json'))).toBeUndefined();
    expect(readEnvelope(Buffer.from('{"bomFormat":"CycloneDX"}'))).toBeUndefined();
    const other = signDsse(Buffer.from(JSON.stringify(v1)), 'application/vnd.other+json', key);
    expect(readEnvelope(Buffer.from(JSON.stringify(other)))?.statement).toBeUndefined();
  });
});

describe('provenanceFacts', () => {
  it('reads SLSA v1 resolvedDependencies with roles, dropping entries without a digest', () => {
    const f = provenanceFacts(v1)!;
    expect(f).toMatchObject({ builderId: 'https://ci/b', buildType: 'https://customs.dev/ml-training/v1', startedOn: '2026-01-01T00:00:00Z', finishedOn: '2026-01-01T01:00:00Z' });
    expect(f.materials.map((m) => [m.role, materialKind(m)])).toEqual([
      ['source', 'code'],
      ['training-dataset', 'dataset'],
      ['base-model', 'base-model'],
    ]);
  });

  it('reads SLSA v0.2 materials', () => {
    const st = statement({ name: 'm', digest: { sha256: model.slice(7) } }, 'https://slsa.dev/provenance/v0.2', {
      builder: { id: 'https://ci/old' },
      buildType: 'https://example/build',
      materials: [{ uri: 'git+https://g/x', digest: { sha1: 'deadbeef' } }, { uri: 'oci://r/ds', digest: { sha256: data.slice(7) } }],
      metadata: { buildFinishedOn: '2025-05-05T00:00:00Z' },
    });
    const f = provenanceFacts(st)!;
    expect(f.builderId).toBe('https://ci/old');
    expect(f.finishedOn).toBe('2025-05-05T00:00:00Z');
    expect(f.materials.map((m) => m.digest)).toEqual([{ sha1: 'deadbeef' }, { sha256: data.slice(7) }]);
    expect(provenanceFacts(statement({ name: 'm', digest: { sha256: 'aa' } }, 'https://example/other', {}))).toBeUndefined();
  });
});
