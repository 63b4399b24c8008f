import type { AddressInfo } from 'node:net';
import type { SigningKey } from '../artifacts/sign.js';
import type { ReadGate } from '../registry/read-gate.js';
import type { AuditInput, MetadataStore } from '../storage/index.js';
import type { AdmissionConfig, VsaConfig } from './config.js';
import { SelfHosts, type UpstreamName } from './references.js';
import { SummaryPublisher, type SummaryWriter } from './summary-publisher.js';
import { AdmissionWebhook, type HubRevisions, type ManifestResolver } from './webhook.js';

/** The cluster-facing capability (issue 18): the admission webhook and signed verification summaries. */
export { admissionConfigSchema, vsaConfigSchema, type AdmissionConfig, type VsaConfig } from './config.js';
export { defaultVerifierKeyFile, loadVerifierKey, publicKeyPem } from './verifier-key.js';
export { publishingSummaries, SummaryPublisher } from './summary-publisher.js';
export { AdmissionWebhook, type HubRevisions } from './webhook.js';
export { SelfHosts } from './references.js';

export interface AdmissionParts {
  readonly webhook: AdmissionWebhook | undefined;
  readonly summaries: SummaryPublisher | undefined;
  /** Once bound: customs' own host names default to the listen address and the certificate's names. */
  bound(address: AddressInfo, certificateNames: readonly string[]): void;
}

export function buildAdmission(o: {
  admission: AdmissionConfig;
  vsa: VsaConfig;
  verifierKey: SigningKey | undefined;
  metadata: MetadataStore;
  writer: SummaryWriter;
  manifests: ManifestResolver;
  gate: Pick<ReadGate, 'manifest'>;
  upstreams: readonly UpstreamName[];
  audit: (e: AuditInput) => Promise<unknown>;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Customs' Hub API, for `hf://` storage URIs (built after the webhook, hence a function). */
  hub?: () => HubRevisions | undefined;
}): AdmissionParts {
  let self = new SelfHosts(o.admission.selfHosts ?? []);
  const summaries = o.verifierKey
    ? new SummaryPublisher({
        metadata: o.metadata,
        writer: o.writer,
        key: o.verifierKey,
        verifierId: o.vsa.verifierId,
        legacyAttTag: o.vsa.legacyAttTag,
        resourceHost: () => self.first() ?? 'customs',
        log: o.log,
      })
    : undefined;
  const webhook = o.admission.enabled
    ? new AdmissionWebhook({ config: o.admission, manifests: o.manifests, gate: o.gate, selfHosts: () => self, upstreams: o.upstreams, audit: o.audit, log: o.log, ...(o.hub ? { hub: o.hub } : {}) })
    : undefined;
  return {
    webhook,
    summaries,
    bound(address, names) {
      if (o.admission.selfHosts) return;
      const wildcard = ['0.0.0.0', '::', '::ffff:0.0.0.0'].includes(address.address);
      const listen = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
      // Certificate names first: they are how nodes reach a TLS registry (and the resource URIs of summaries).
      self = new SelfHosts([...names.map((n) => (n.includes(':') ? `[${n}]` : n)), ...(wildcard ? [] : [listen])]);
    },
  };
}
