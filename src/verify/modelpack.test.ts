import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { imageManifestSchema } from '../oci/schemas.js';
import { VECTORS } from '../../test/helpers/verify.js';
import { isPickleCandidate } from './model-scan.js';
import { modelConfigViolations } from './modelpack.js';

const read = (p: string): Buffer => readFileSync(join(VECTORS, p));

describe('ModelPack config allowlists (vectors/modelpack, vectors/synthetic)', () => {
  it('the spec example: Apache-2.0, format pt', () => {
    const cfg = read('modelpack/example-config-0.from-config.md.json');
    expect(modelConfigViolations(cfg, { allowLicenses: ['Apache-2.0'], allowFormats: ['pt', 'safetensors'] })).toEqual([]);
    expect(modelConfigViolations(cfg, { allowLicenses: ['MIT'] })).toEqual(['model license Apache-2.0 is not allowed']);
    expect(modelConfigViolations(cfg, { allowFormats: ['safetensors'] })).toEqual(['model format pt is not allowed']);
  });
  it('the synthetic config declares no license: an allowlist denies it', () => {
    const cfg = read('synthetic/modelpack-config.json');
    expect(modelConfigViolations(cfg, { allowLicenses: ['*'] })).toEqual(['model declares no license (descriptor.licenses)']);
    expect(modelConfigViolations(cfg, { allowFormats: ['safetensors'] })).toEqual([]);
    expect(modelConfigViolations(Buffer.from('nope'), { allowFormats: ['x'] })).toEqual(['ModelPack config is not JSON']);
  });
});

describe('which layers the pickle scan reads (vectors/modelpack, docker-model, kitops)', () => {
  const layers = (p: string) => imageManifestSchema.parse(JSON.parse(read(p).toString().replace(/sha256:[0-9a-zA-Z]+/g, `sha256:${'a'.repeat(64)}`))).layers;
  it('ModelPack tar layers are scanned (their format may be pt)', () => {
    expect(layers('modelpack/example-manifest.from-spec.md.json').map(isPickleCandidate)).toEqual([true, true, true, true]);
  });
  it('Docker model GGUF layers are not read; safetensors layers are (their headers are validated); its config tar is scanned', () => {
    expect(layers('docker-model/example-gguf-manifest.from-spec.md.json').map(isPickleCandidate)).toEqual([false, false]);
    expect(layers('docker-model/example-safetensors-sharded-manifest.from-spec.md.json').map(isPickleCandidate)).toEqual([true, true, true, false]);
  });
  it('KitOps: the model tar is scanned, the code tar is not', () => {
    expect(layers('kitops/manifestA.synthetic.json').map(isPickleCandidate)).toEqual([true, false]);
  });
  it('the synthetic ModelPack raw layers: model.safetensors is read, tokenizer.json is not', () => {
    expect(layers('synthetic/modelpack-manifest.json').map(isPickleCandidate)).toEqual([true, false]);
  });
});
