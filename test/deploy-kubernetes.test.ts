import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { admissionConfigSchema, vsaConfigSchema } from '../src/admission/config.js';
import { parseConfigText } from '../src/config/load.js';
import { tlsConfigSchema } from '../src/http/tls.js';
import { policySchema } from '../src/verify/policy.js';
import { goTool } from './helpers/tools.js';

/**
 * deploy/kubernetes as a cluster would receive it: rendered by kustomize (the pinned Go build), every
 * object validated against the Kubernetes OpenAPI schemas of a pinned version (kubernetes-models
 * 4.5.1, generated from Kubernetes 1.33's OpenAPI: types, required fields, enums, formats), then the
 * wiring checked: probes, security context, the webhook paths and ports, and the configuration in the
 * Secret parsed by customs' own schema.
 */
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };

function render(dir: string): Obj[] {
  const out = execFileSync(goTool('kustomize'), ['build', dir], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj);
}

/** The kubernetes-models class of an object's apiVersion and kind; throws for a kind it does not know. */
async function validate(o: Obj): Promise<void> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}/${o.kind}` : `kubernetes-models/${version}/${o.kind}`;
  const mod = (await import(path)) as Record<string, new (x: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

const DIRS = { embedded: 'deploy/kubernetes', 'scale-out': 'deploy/kubernetes/scale-out' };

describe('deploy/kubernetes', () => {
  it('the validator rejects what the API server would (so a pass means something)', async () => {
    const bad = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { spec: { containers: [{ name: 'c', image: 'i', ports: [{ containerPort: '5443' }] }] } } } };
    await expect(validate(bad as Obj)).rejects.toThrow(/containerPort must be integer/);
    const noTemplate = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: {} } };
    await expect(validate(noTemplate as Obj)).rejects.toThrow(/template/);
    const badPolicy = { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'x' }, webhooks: [{ name: 'a.b.c', clientConfig: {}, sideEffects: 'None', admissionReviewVersions: ['v1'], failurePolicy: 7 }] };
    await expect(validate(badPolicy as Obj)).rejects.toThrow(/failurePolicy/);
  });

  for (const [mode, dir] of Object.entries(DIRS)) {
    describe(mode, () => {
      const objects = render(dir);
      const one = (kind: string, name = 'customs') => {
        const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
        if (!o) throw new Error(`${mode}: no ${kind} ${name}`);
        return o as Obj & Record<string, any>;
      };

      it('every object validates against the Kubernetes OpenAPI schemas', async () => {
        expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
          [
            'Namespace/customs',
            'ServiceAccount/customs',
            'Service/customs',
            'Secret/customs-config',
            'Deployment/customs',
            'ValidatingWebhookConfiguration/customs',
            'MutatingWebhookConfiguration/customs',
            mode === 'embedded' ? 'PersistentVolumeClaim/customs-data' : 'PodDisruptionBudget/customs',
          ].sort(),
        );
        for (const o of objects) await validate(o);
        for (const o of objects) if (!['Namespace', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'].includes(o.kind)) expect(o.metadata.namespace, o.kind).toBe('customs');
      });

      it('runs customs non-root on a read-only root filesystem, with resources and probes on /healthz and /readyz', () => {
        const d = one('Deployment');
        const pod = d.spec.template.spec;
        const c = pod.containers[0];
        expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
        expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
        expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
        expect(c.resources.requests.cpu).toBeTruthy();
        expect(c.resources.limits.memory).toBeTruthy();
        expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', scheme: 'HTTPS', port: 'https' });
        expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', scheme: 'HTTPS', port: 'https' });
        // The port customs listens on is the container port the probes and the Service name.
        const listen = c.args[c.args.indexOf('--listen') + 1] as string;
        expect(c.ports).toEqual([{ name: 'https', containerPort: Number(listen.split(':')[1]), protocol: 'TCP' }]);
        expect(one('Service').spec.ports[0]).toMatchObject({ port: 443, targetPort: 'https' });
        // The Service selects these pods, and the Deployment's selector matches its own template.
        expect(d.spec.template.metadata.labels).toMatchObject(one('Service').spec.selector);
        expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
        // Every mount has its volume; writable paths are volumes, not the image.
        const volumes = new Set(pod.volumes.map((v: { name: string }) => v.name));
        for (const m of c.volumeMounts) expect(volumes.has(m.name), m.name).toBe(true);
        expect(c.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toEqual(expect.arrayContaining(['/var/lib/customs', '/tmp', '/etc/customs/tls', '/etc/customs/config']));
        if (mode === 'embedded') {
          expect(d.spec.replicas).toBe(1);
          expect(pod.volumes.find((v: { name: string }) => v.name === 'data').persistentVolumeClaim.claimName).toBe('customs-data');
        } else {
          expect(d.spec.replicas).toBeGreaterThan(1);
        }
      });

      it("the Secret's customs.yaml is a valid customs configuration for this mode", () => {
        const secret = one('Secret', 'customs-config');
        const config = parseConfigText(secret.stringData['customs.yaml'], `${mode} customs.yaml`);
        const d = one('Deployment');
        const c = d.spec.template.spec.containers[0];
        expect(c.args).toContain('/etc/customs/config/customs.yaml');
        const tls = tlsConfigSchema.parse(config.tls);
        expect(tls.cert.startsWith('/etc/customs/tls/')).toBe(true);
        expect(admissionConfigSchema.parse(config.admission).enabled).toBe(true);
        vsaConfigSchema.parse(config.vsa ?? {});
        policySchema.parse(config.policy);
        if (mode === 'scale-out') {
          expect(config.storage.driver).toBe('s3');
          expect(config.metadata.driver).toBe('postgres');
          expect(vsaConfigSchema.parse(config.vsa).keyFile).toMatch(/^\/etc\/customs\/shared\//);
          expect(config.auth.sessionKeyFile).toMatch(/^\/etc\/customs\/shared\//);
        }
      });

      it('the webhook configurations call /admission/v1/validate and /mutate on the Service, with a caBundle placeholder', () => {
        for (const [kind, path] of [
          ['ValidatingWebhookConfiguration', '/admission/v1/validate'],
          ['MutatingWebhookConfiguration', '/admission/v1/mutate'],
        ] as const) {
          const w = one(kind).webhooks[0];
          expect(w.clientConfig.service).toEqual({ name: 'customs', namespace: 'customs', path, port: one('Service').spec.ports[0].port });
          expect(Buffer.from(w.clientConfig.caBundle, 'base64').toString()).toBe('REPLACE WITH THE CA BUNDLE');
          expect(w.admissionReviewVersions).toEqual(['v1']);
          expect(w.sideEffects).toBe('NoneOnDryRun');
          const resources = w.rules.flatMap((r: { resources: string[] }) => r.resources);
          for (const r of ['pods', 'deployments', 'statefulsets', 'daemonsets', 'jobs', 'cronjobs', 'inferenceservices']) expect(resources).toContain(r);
          // customs' own namespace is skipped: its pods must start while it is down.
          expect(w.namespaceSelector.matchExpressions).toContainEqual({ key: 'customs.dev/admission', operator: 'NotIn', values: ['skip'] });
        }
        expect(one('Namespace').metadata).toMatchObject({ labels: { 'customs.dev/admission': 'skip' } });
      });
    });
  }
});
