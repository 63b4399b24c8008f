export * from './blob-store.js';
export * from './upload-store.js';
export * from './metadata-store.js';
export * from './ops-store.js';
export * from './audit-chain.js';
export * from './verdict-store.js';
export * from './random-access-stream.js';
export * from './file-writes.js';
