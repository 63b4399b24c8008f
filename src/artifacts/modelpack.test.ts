import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { EMPTY_JSON_DIGEST, digestOf, parseManifest, type Digest } from '../oci/index.js';
import { ModelPack, Sigstore } from './media-types.js';
import { buildModelConfig, buildModelManifest, buildReferrerManifest, layerMediaType, type PackedFile } from './modelpack.js';

const schema = JSON.parse(readFileSync(new URL('../../../shared/vectors/modelpack/config-schema.json', import.meta.url), 'utf8'));
const cosignReferrer = JSON.parse(readFileSync(new URL('../../../shared/vectors/synthetic/referrer-manifest.json', import.meta.url), 'utf8'));

const file = (relPath: string, content: string, mediaType = layerMediaType(relPath, 'model')): PackedFile => ({
  path: `/x/${relPath}`,
  relPath,
  size: Buffer.byteLength(content),
  digest: digestOf(content),
  mediaType,
});

describe('ModelPack packing', () => {
  const files = [file('model.joblib', 'weights'), file('metrics.json', '{}'), file('README.md', '# m')];

  it('classifies files into ModelPack layer types', () => {
    expect(layerMediaType('model.joblib', 'model')).toBe(ModelPack.weightRaw);
    expect(layerMediaType('sub/model.safetensors', 'model')).toBe(ModelPack.weightRaw);
    expect(layerMediaType('config.json', 'model')).toBe(ModelPack.weightConfigRaw);
    expect(layerMediaType('README.md', 'model')).toBe(ModelPack.docRaw);
    expect(layerMediaType('LICENSE', 'model')).toBe(ModelPack.docRaw);
    expect(layerMediaType('train.py', 'model')).toBe(ModelPack.codeRaw);
    expect(layerMediaType('model.joblib', 'dataset')).toBe(ModelPack.datasetRaw);
  });

  it('writes a config that validates against the ModelPack config schema', () => {
    const config = buildModelConfig({ name: 'fraud', version: '1', createdAt: '2025-01-01T00:00:00Z', licenses: ['Apache-2.0'], format: 'joblib', architecture: 'isolation-forest' }, files);
    const ajv = new Ajv2020.default({ strict: false });
    addFormats.default(ajv);
    const validate = ajv.compile(schema);
    expect(validate(config), JSON.stringify(validate.errors)).toBe(true);
    expect((config.modelfs as { diffIds: string[] }).diffIds).toEqual(files.map((f) => f.digest));
    // And a config with a field the schema does not know is rejected, so the check can fail.
    expect(validate({ ...config, extra: 1 })).toBe(false);
  });

  it('builds a manifest the OCI parser accepts, one annotated layer per file', () => {
    const configBytes = Buffer.from('{"a":1}');
    const m = buildModelManifest(configBytes, files, 'model', '2025-01-01T00:00:00Z');
    expect(m.digest).toBe(digestOf(m.bytes));
    const parsed = parseManifest(m.bytes, 'application/vnd.oci.image.manifest.v1+json');
    expect(parsed.artifactType).toBe(ModelPack.artifactType);
    expect(parsed.config?.mediaType).toBe(ModelPack.config);
    expect(parsed.config?.digest).toBe(digestOf(configBytes));
    const json = JSON.parse(m.bytes.toString());
    expect(json.layers.map((l: { annotations: Record<string, string> }) => l.annotations[ModelPack.filepathAnnotation])).toEqual(['model.joblib', 'metrics.json', 'README.md']);
    // oras (and most OCI tools) name a pulled file after org.opencontainers.image.title.
    expect(json.layers.map((l: { annotations: Record<string, string> }) => l.annotations[ModelPack.titleAnnotation])).toEqual(['model.joblib', 'metrics.json', 'README.md']);
  });

  it('lays out a referrer exactly as cosign does (field for field, minus created)', () => {
    const layer = { mediaType: Sigstore.bundleV03, digest: cosignReferrer.layers[0].digest as Digest, size: cosignReferrer.layers[0].size };
    const r = buildReferrerManifest({
      subject: cosignReferrer.subject,
      artifactType: Sigstore.bundleV03,
      layer,
      annotations: cosignReferrer.annotations,
    });
    expect(JSON.parse(r.bytes.toString())).toEqual(cosignReferrer);
    expect(cosignReferrer.config.digest).toBe(EMPTY_JSON_DIGEST);
  });
});
