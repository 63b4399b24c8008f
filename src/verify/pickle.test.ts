import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { makePickles } from '../../test/helpers/verify.js';
import { isPickleCandidate, scanModelLayer } from './model-scan.js';
import { scanPickleStream } from './pickle.js';

let P: Record<string, Buffer>;
beforeAll(() => {
  P = makePickles();
});

/** 1000-byte chunks: opcodes and arguments straddle chunk boundaries. */
const stream = (b: Buffer): Readable => Readable.from(Array.from({ length: Math.ceil(b.length / 1000) }, (_, i) => b.subarray(i * 1000, i * 1000 + 1000)));

describe('pickle scanner', () => {
  for (const f of ['evil-p4.pkl', 'evil-p0.pkl', 'evil-p2.pkl']) {
    it(`${f}: os.system (posix.system) is a finding`, async () => {
      const r = await scanPickleStream(stream(P[f]!), f);
      expect(r.globals).toContain('posix.system');
      expect(r.problems.join()).toMatch(/imports posix\.system \(dangerous\)/);
    });
  }
  it('builtins.eval is a finding (protocol 5)', async () => {
    const r = await scanPickleStream(stream(P['eval-p5.pkl']!), 'eval');
    expect(r.problems.join()).toMatch(/builtins\.eval \(dangerous\)/);
  });
  it('a scikit-learn IsolationForest saved with joblib is allowed (raw numpy arrays skipped)', async () => {
    const r = await scanPickleStream(stream(P['iforest.joblib']!), 'iforest');
    expect(r.problems).toEqual([]);
    expect(r.globals).toContain('sklearn.ensemble._iforest.IsolationForest');
    expect(r.globals).toContain('joblib.numpy_pickle.NumpyArrayWrapper');
  });
  it('extra exact pairs extend the allow-list (module:name or module.name); globs are refused', async () => {
    expect((await scanPickleStream(stream(P['evil-p4.pkl']!), 'x', { allow: ['posix:system'] })).problems).toEqual([]);
    expect((await scanPickleStream(stream(P['evil-p4.pkl']!), 'x', { allow: ['posix.system'] })).problems).toEqual([]);
    await expect(scanPickleStream(stream(P['evil-p4.pkl']!), 'x', { allow: ['posix.*'] })).rejects.toThrow(/glob/);
  });
  it('STACK_GLOBAL with operands that are not strings is denied with its offset', async () => {
    // PROTO 4, SHORT_BINUNICODE 'os', NONE, STACK_GLOBAL, STOP: the name is not a string.
    const b = Buffer.from([0x80, 4, 0x8c, 2, 0x6f, 0x73, 0x4e, 0x93, 0x2e]);
    const r = await scanPickleStream(stream(b), 'odd');
    expect(r.problems.join()).toMatch(/STACK_GLOBAL requires str at offset 7/);
  });
  it('truncated and non-pickle data are findings', async () => {
    expect((await scanPickleStream(stream(P['evil-p4.pkl']!.subarray(0, 20)), 't')).problems.join()).toMatch(/truncated/);
    expect((await scanPickleStream(stream(Buffer.from([0xff, 0x00, 0x01])), 'g')).problems.join()).toMatch(/unknown opcode/);
  });
});

describe('model layers: zip (.pt), tar, gzip', () => {
  const scan = (f: string) => scanModelLayer(stream(P[f]!), f);
  it('torch-style zip: data.pkl with only safe globals passes', async () => {
    expect((await scan('torch-safe.pt')).problems).toEqual([]);
  });
  it('torch-style zip: data.pkl importing os.system is denied, stored or deflated', async () => {
    expect((await scan('torch-evil.pt')).problems.join()).toMatch(/archive\/data\.pkl imports posix\.system/);
    expect((await scan('torch-evil-deflate.pt')).problems.join()).toMatch(/posix\.system/);
  });
  it('tar layers: the pickle inside is found, plain or gzipped', async () => {
    expect((await scan('layer-evil.tar')).problems.join()).toMatch(/pytorch_model\.bin imports posix\.system/);
    expect((await scan('layer-evil.tar.gz')).problems.join()).toMatch(/posix\.system/);
    expect((await scan('layer-safe.tar')).problems).toEqual([]);
    expect((await scan('layer-safe.tar.gz')).problems).toEqual([]);
  });
  it('picks candidate layers by file name, media type, ModelPack tar type', () => {
    const d = { digest: `sha256:${'a'.repeat(64)}` as const, size: 1 };
    expect(isPickleCandidate({ ...d, mediaType: 'application/octet-stream', annotations: { 'org.cncf.model.filepath': 'model.joblib' } })).toBe(true);
    expect(isPickleCandidate({ ...d, mediaType: 'application/vnd.cncf.model.weight.v1.tar' })).toBe(true);
    expect(isPickleCandidate({ ...d, mediaType: 'application/vnd.cncf.model.weight.v1.raw', annotations: { 'org.cncf.model.filepath': 'model.safetensors' } })).toBe(true);
    expect(isPickleCandidate({ ...d, mediaType: 'application/vnd.cncf.model.weight.v1.raw', annotations: { 'org.cncf.model.filepath': 'model.joblib.xz' } })).toBe(true);
    expect(isPickleCandidate({ ...d, mediaType: 'application/vnd.cncf.model.weight.v1.raw', annotations: { 'org.cncf.model.filepath': 'tokenizer.json' } })).toBe(false);
  });
});
