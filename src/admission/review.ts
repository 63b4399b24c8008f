import { z } from 'zod';

/**
 * `admission.k8s.io/v1` AdmissionReview, as the API server sends it (k8s.io/api/admission/v1
 * types.go): only the fields this webhook reads are typed; the rest is kept loose, as the API
 * server adds fields across versions.
 */
const groupVersionKind = z.looseObject({ group: z.string(), version: z.string(), kind: z.string() });

export const admissionRequestSchema = z.looseObject({
  uid: z.string().min(1).max(256),
  kind: groupVersionKind,
  resource: z.looseObject({ group: z.string(), version: z.string(), resource: z.string() }).optional(),
  subResource: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
  userInfo: z.looseObject({ username: z.string().optional() }).optional(),
  object: z.unknown().optional(),
  oldObject: z.unknown().optional(),
  dryRun: z.boolean().optional(),
});
export type AdmissionRequest = z.infer<typeof admissionRequestSchema>;

export const admissionReviewSchema = z.looseObject({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: admissionRequestSchema,
});
export type AdmissionReview = z.infer<typeof admissionReviewSchema>;

export interface JsonPatchOp {
  readonly op: 'replace';
  readonly path: string;
  readonly value: string;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { readonly code: number; readonly reason?: string; readonly message: string };
  readonly patchType?: 'JSONPatch';
  /** base64 of the JSON Patch (RFC 6902). */
  readonly patch?: string;
  readonly warnings?: string[];
  readonly auditAnnotations?: Record<string, string>;
}

export function reviewResponse(response: AdmissionResponse): { apiVersion: 'admission.k8s.io/v1'; kind: 'AdmissionReview'; response: AdmissionResponse } {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

export function allow(uid: string, extra: { patch?: JsonPatchOp[]; warnings?: string[]; annotations?: Record<string, string> } = {}): AdmissionResponse {
  return {
    uid,
    allowed: true,
    ...(extra.patch && extra.patch.length > 0 ? { patchType: 'JSONPatch' as const, patch: Buffer.from(JSON.stringify(extra.patch)).toString('base64') } : {}),
    // Warnings are shown to the user as they are (kubectl prints each); keep them few and bounded.
    ...(extra.warnings && extra.warnings.length > 0 ? { warnings: extra.warnings.slice(0, 10).map((w) => w.slice(0, 256)) } : {}),
    ...(extra.annotations ? { auditAnnotations: extra.annotations } : {}),
  };
}

export function deny(uid: string, message: string, reason = 'Forbidden', annotations?: Record<string, string>): AdmissionResponse {
  // status.message is what kubectl prints; the API server caps what it stores, so keep it bounded.
  return { uid, allowed: false, status: { code: 403, reason, message: message.slice(0, 8000) }, ...(annotations ? { auditAnnotations: annotations } : {}) };
}
