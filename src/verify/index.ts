/** The verification layer's public API (the registry, proxy, CLI and config import from here). */
export type { Check, ContentSource, Finding, Mode, TagResolver, Verdict } from './types.js';
export { hasTagResolver } from './types.js';
export {
  attestationRequirementSchema,
  authoritySchema,
  defaultPolicy,
  matchRule,
  parsePolicy,
  policyHash,
  policySchema,
  ruleName,
  ruleSchema,
  withMode,
  type Authority,
  type AuthorityInput,
  type Policy,
  type PolicyInput,
  type Rule,
} from './policy.js';
export { loadTrust, loadKeyDir, trustKeysDir, trustedRootSchema, verifierAuthority, VSA_PREDICATE_TYPE, type LoadTrustOptions, type Trust } from './trust.js';
export { generateKeyPair, writeKeyPair, type KeyPairFiles } from './keygen.js';
export { Gate, buildGate, describeFailures, enforceVerdict, type BuildGateOptions, type GateOptions } from './gate.js';
export { DEFAULT_LIMITS, type Limits } from './gather.js';
export { warmUpSbomValidators } from './sbom.js';
export { scanModelLayer, isPickleCandidate } from './model-scan.js';
export { scanPickleStream, DEFAULT_PICKLE_PAIRS, parsePickleAllowEntry, type PickleScanResult } from './pickle.js';
