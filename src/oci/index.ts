export * from './errors.js';
export * from './digest.js';
export * from './names.js';
export * from './media-types.js';
export * from './schemas.js';
export * from './manifest.js';
export * from './wire-error.js';
