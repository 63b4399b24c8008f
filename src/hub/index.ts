/** The Hugging Face Hub capability: its API over customs' artifacts, and pull-through from upstream Hubs. */
export { hubConfigSchema, type HubConfig, type HubUpstreamConfig } from './config.js';
export { HubPullThrough, type HubPullThroughOptions, type HubTarget } from './pull-through.js';
export { HubService, type HubRepo, type HubRepoRequest, type OpenedRevision } from './service.js';
export { hubRuleOf, type HubRuleView, type HubRules } from './policy.js';
export { revisionView, type RevisionView, type ServedFile } from './manifest.js';
export type { RepoType } from './names.js';
export { HubImporter, type ImportEvent, type ImportRequest, type ImportResult } from './import.js';
