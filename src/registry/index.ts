export * from './read-gate.js';
export * from './blob-service.js';
export * from './upload-service.js';
export * from './manifest-service.js';
export * from './listing-service.js';
export * from './policy-read-gate.js';
export * from './content-source.js';
export * from './garbage-collector.js';
