import { describe, expect, it } from 'vitest';
import { extractImages } from './workloads.js';

describe('images a workload names', () => {
  it('reads every container list of a pod spec wherever the kind keeps it', () => {
    const spec = { containers: [{ name: 'a', image: 'x/a:1' }], initContainers: [{ name: 'i', image: 'x/i:1' }], ephemeralContainers: [{ name: 'e', image: 'x/e:1' }] };
    expect(extractImages({ group: '', kind: 'Pod' }, { spec }).locations.map((l) => l.pointer)).toEqual(['/spec/containers/0/image', '/spec/initContainers/0/image', '/spec/ephemeralContainers/0/image']);
    expect(extractImages({ group: 'batch', kind: 'CronJob' }, { spec: { jobTemplate: { spec: { template: { spec } } } } }).locations[0]!.pointer).toBe('/spec/jobTemplate/spec/template/spec/containers/0/image');
    expect(extractImages({ group: 'apps', kind: 'Deployment' }, { spec: { template: { spec } } }).locations).toHaveLength(3);
  });

  it('reads KServe storage URIs: oci:// and hf:// to check, other schemes as warnings', () => {
    const isvc = {
      spec: {
        predictor: { model: { storageUri: 'oci://c/models/x:v1' }, huggingface: { storageUri: 'hf://org/llm:main' }, sklearn: { storageUri: 's3://bucket/model' } },
        transformer: { containers: [{ name: 't', image: 'c/t:1' }] },
      },
    };
    const r = extractImages({ group: 'serving.kserve.io', kind: 'InferenceService' }, isvc);
    expect(r.locations.map((l) => [l.pointer, l.kind])).toEqual([
      ['/spec/predictor/model/storageUri', 'oci'],
      ['/spec/predictor/huggingface/storageUri', 'hf'],
      ['/spec/transformer/containers/0/image', 'image'],
    ]);
    expect(r.unsupported).toEqual(['predictor.sklearn storageUri s3:// is not served by customs']);
  });

  it('leaves kinds it does not understand alone', () => {
    expect(extractImages({ group: '', kind: 'ConfigMap' }, { data: { image: 'x' } }).understood).toBe(false);
    expect(extractImages({ group: 'apps', kind: 'Deployment' }, 'not an object').understood).toBe(false);
  });
});
