import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { admissionReviewSchema } from '../admission/review.js';
import type { AdmissionWebhook } from '../admission/webhook.js';
import { err } from '../oci/index.js';
import { contextOf, readSmallBody } from './request-context.js';

/**
 * /admission/v1/: the Kubernetes admission webhook (validate, mutate) and customs' verifier public key.
 * The API server posts an AdmissionReview and reads one back; a body that is not one is a 400 (the
 * API server then applies its own failurePolicy).
 */
type Env = { Bindings: HttpBindings };

/** The API server's objects are at most ~1.5 MiB; a review carries the object and the old one. */
const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

export function admissionApp(o: { webhook: AdmissionWebhook | undefined; verifierPublicKey: string | undefined }): Hono<Env> {
  const app = new Hono<Env>();
  if (o.verifierPublicKey !== undefined) {
    const pem = o.verifierPublicKey;
    app.get('/v1/verifier.pub', (c) => {
      contextOf(c.env.incoming).route = 'admission-verifier-key';
      return c.body(pem, 200, { 'content-type': 'application/x-pem-file' });
    });
  }
  const webhook = o.webhook;
  if (!webhook) return app;
  for (const [path, mutate] of [
    ['/v1/validate', false],
    ['/v1/mutate', true],
  ] as const) {
    app.post(path, async (c) => {
      const ctx = contextOf(c.env.incoming);
      ctx.route = mutate ? 'admission-mutate' : 'admission-validate';
      const body = await readSmallBody(c.env.incoming, MAX_REVIEW_BYTES);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        throw err('NAME_INVALID', 'invalid request: body is not JSON, expected an admission.k8s.io/v1 AdmissionReview');
      }
      const parsed = admissionReviewSchema.safeParse(json);
      if (!parsed.success) {
        throw err('NAME_INVALID', `invalid request: not an admission.k8s.io/v1 AdmissionReview: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ').slice(0, 500)}`);
      }
      ctx.actor = `k8s:${parsed.data.request.userInfo?.username ?? 'unknown'}`.slice(0, 200);
      const response = await webhook.review(parsed.data.request, mutate);
      return c.json({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response });
    });
  }
  return app;
}
