import { z } from 'zod';

/** The `admission:` slice: the Kubernetes admission webhook (off unless enabled: it answers whoever reaches it). */
export const admissionConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /**
     * Registry host names (host or host:port) that are customs itself: `customs.example:5443/models/x:v1`
     * then means the repository `models/x`. Default: the listen address and the TLS certificate's names.
     */
    selfHosts: z.array(z.string().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:]+\](:\d{1,5})?$/, 'expected HOST or HOST:PORT')).optional(),
    /** What to answer when customs cannot decide (storage down, upstream unreachable, too slow): Fail denies, Ignore allows. */
    failurePolicy: z.enum(['Fail', 'Ignore']).default('Fail'),
    /** Namespaces whose objects are allowed unchecked (the webhook configuration's namespaceSelector should skip them too). */
    skipNamespaces: z.array(z.string().min(1)).default(['kube-system', 'kube-public', 'kube-node-lease']),
    /** Images from a registry that is neither customs nor one of its upstreams bypass customs on the node: deny them (default) or allow. */
    unmappedRegistries: z.enum(['deny', 'allow']).default('deny'),
    /** Seconds to decide in; past it the failure policy answers (the API server's own limit is 10 s by default). */
    timeoutSeconds: z.number().positive().max(30).default(8),
  })
  .strict();
export type AdmissionConfig = z.infer<typeof admissionConfigSchema>;

/** The `vsa:` slice: SLSA verification summaries customs signs and attaches when the gate allows a digest. */
export const vsaConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** PKCS#8 PEM ECDSA P-256 key; generated on first use. Replicas must share one (a Kubernetes Secret). Default <data>/trust/verifier.key. */
    keyFile: z.string().min(1).optional(),
    /** `predicate.verifier.id`: what policies (Kyverno, policy-controller) match on. */
    verifierId: z.string().url().default('https://customs.dev/verifier/v1'),
    /** Also write cosign's legacy `sha256-<hex>.att` tag (local repositories; in pull-through ones tags are the upstream's). */
    legacyAttTag: z.boolean().default(true),
  })
  .strict();
export type VsaConfig = z.infer<typeof vsaConfigSchema>;
