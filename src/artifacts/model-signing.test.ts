import { describe, expect, it } from 'vitest';
import { digestOf } from '../oci/index.js';
import type { PackedFile } from './modelpack.js';
import { ignoredBySignature, modelSigningStatement, signatureMismatch, type ModelSignature } from './model-signing.js';

const file = (relPath: string, body: string): PackedFile => ({ path: `/m/${relPath}`, relPath, size: body.length, digest: digestOf(Buffer.from(body)), mediaType: 'x' });

describe('model signing', () => {
  const files = [file('a.txt', 'a'), file('a/b', 'b'), file('z', 'z')];
  const st = modelSigningStatement('m', files);
  const sig: ModelSignature = {
    bundle: {},
    statement: st as ModelSignature['statement'],
    resources: (st.predicate as { resources: { name: string; digest: string }[] }).resources,
    ignorePaths: ['.git', 'sub/ignored'],
  };

  it('orders resources by path components, as model_signing (pathlib) does', () => {
    expect(sig.resources.map((r) => r.name)).toEqual(['a/b', 'a.txt', 'z']);
  });

  it('names the file that changed, appeared or vanished after signing', () => {
    expect(signatureMismatch(sig, files)).toBeUndefined();
    expect(signatureMismatch(sig, [file('a.txt', 'A'), files[1]!, files[2]!])).toMatch(/^a\.txt changed after signing/);
    expect(signatureMismatch(sig, [...files, file('new.bin', 'n')])).toMatch(/^new\.bin was added after signing/);
    expect(signatureMismatch(sig, files.slice(1))).toMatch(/^a\.txt is signed but missing/);
  });

  it('leaves out the ignored paths and a signature inside the directory', () => {
    const ignored = ignoredBySignature(sig, '/m', '/m/model.sig');
    expect(['.git/HEAD', 'sub/ignored/x', 'model.sig', 'sub/other', 'a.txt'].filter(ignored)).toEqual(['.git/HEAD', 'sub/ignored/x', 'model.sig']);
    expect(ignoredBySignature(sig, '/m', '/elsewhere/model.sig')('model.sig')).toBe(false);
  });
});
