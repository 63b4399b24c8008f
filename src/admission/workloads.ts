/**
 * Where a Kubernetes object names what a node will pull: every container, init container and
 * ephemeral container image of a pod spec, wherever the kind keeps its pod spec, and KServe
 * InferenceService model locations (`storageUri`). Each location has a JSON Pointer (RFC 6901)
 * so the mutating webhook can patch it.
 */
export interface ImageLocation {
  /** JSON Pointer into the object, e.g. `/spec/template/spec/containers/0/image`. */
  readonly pointer: string;
  /** Human-readable, for messages: `container app`, `initContainer setup`, `predictor.model storageUri`. */
  readonly where: string;
  readonly value: string;
  /**
   * `image`: a container image; `oci`: an `oci://` storage URI (the value without the scheme is the reference);
   * `hf`: an `hf://<org>/<model>[:<revision>]` storage URI (KServe's Hugging Face scheme), served by customs' Hub API.
   */
  readonly kind: 'image' | 'oci' | 'hf';
}

export interface WorkloadKind {
  readonly group: string;
  readonly kind: string;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const esc = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');

/** The pod spec's pointer for each workload kind this webhook understands; undefined for others. */
function podSpecPaths(k: WorkloadKind): string[][] | undefined {
  if (k.group === '' && k.kind === 'Pod') return [['spec']];
  if (k.group === '' && (k.kind === 'ReplicationController' || k.kind === 'PodTemplate')) return k.kind === 'PodTemplate' ? [['template', 'spec']] : [['spec', 'template', 'spec']];
  if (k.group === 'apps' && ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].includes(k.kind)) return [['spec', 'template', 'spec']];
  if (k.group === 'batch' && k.kind === 'Job') return [['spec', 'template', 'spec']];
  if (k.group === 'batch' && k.kind === 'CronJob') return [['spec', 'jobTemplate', 'spec', 'template', 'spec']];
  return undefined;
}

const CONTAINER_LISTS = [
  ['containers', 'container'],
  ['initContainers', 'initContainer'],
  ['ephemeralContainers', 'ephemeralContainer'],
] as const;

function podSpecImages(spec: Json | undefined, base: string, out: ImageLocation[], prefix = ''): void {
  if (!spec) return;
  for (const [list, label] of CONTAINER_LISTS) {
    const items = spec[list];
    if (!Array.isArray(items)) continue;
    items.forEach((c, i) => {
      const image = obj(c)?.image;
      if (typeof image === 'string') {
        const name = typeof obj(c)?.name === 'string' ? (obj(c)!.name as string) : String(i);
        out.push({ pointer: `${base}/${list}/${i}/image`, where: `${prefix}${label} ${name}`, value: image, kind: 'image' });
      }
    });
  }
}

const KSERVE_COMPONENTS = ['predictor', 'transformer', 'explainer'];

/**
 * KServe v1beta1: each component (predictor, transformer, explainer) is a pod spec of its own
 * (`containers`, `initContainers`) plus model specs (`model`, or the older framework keys such as
 * `sklearn`, `pytorch`, `huggingface`) with a `storageUri` and an optional `image`.
 */
function inferenceServiceImages(o: Json, out: ImageLocation[], unsupported: string[]): void {
  const spec = obj(o.spec);
  for (const c of KSERVE_COMPONENTS) {
    const comp = obj(spec?.[c]);
    if (!comp) continue;
    const base = `/spec/${c}`;
    podSpecImages(comp, base, out, `${c} `);
    for (const [key, value] of Object.entries(comp)) {
      const m = obj(value);
      if (!m || ['containers', 'initContainers', 'ephemeralContainers'].includes(key)) continue;
      if (typeof m.storageUri === 'string') {
        const where = `${c}.${key} storageUri`;
        const pointer = `${base}/${esc(key)}/storageUri`;
        if (m.storageUri.startsWith('oci://')) out.push({ pointer, where, value: m.storageUri, kind: 'oci' });
        else if (m.storageUri.startsWith('hf://')) out.push({ pointer, where, value: m.storageUri, kind: 'hf' });
        else unsupported.push(`${where} ${m.storageUri.split('://')[0]}:// is not served by customs`);
      }
      if (typeof m.image === 'string') out.push({ pointer: `${base}/${esc(key)}/image`, where: `${c}.${key} image`, value: m.image, kind: 'image' });
    }
  }
}

export interface Extracted {
  /** False for kinds this webhook does not inspect (they are allowed). */
  readonly understood: boolean;
  readonly locations: ImageLocation[];
  /** Model locations in schemes customs does not serve (`s3://`, `gs://`, ...): reported as warnings. */
  readonly unsupported: string[];
}

export function extractImages(kind: WorkloadKind, object: unknown): Extracted {
  const o = obj(object);
  const out: ImageLocation[] = [];
  const unsupported: string[] = [];
  if (!o) return { understood: false, locations: out, unsupported };
  if (kind.group === 'serving.kserve.io' && kind.kind === 'InferenceService') {
    inferenceServiceImages(o, out, unsupported);
    return { understood: true, locations: out, unsupported };
  }
  const paths = podSpecPaths(kind);
  if (!paths) return { understood: false, locations: out, unsupported };
  for (const path of paths) {
    let cur: Json | undefined = o;
    for (const p of path) cur = obj(cur?.[p]);
    podSpecImages(cur, `/${path.join('/')}`, out);
  }
  return { understood: true, locations: out, unsupported };
}
