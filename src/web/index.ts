export { type BuildResult, buildWebBundle, ensureWebBundle } from './build.js';
export { type ServeHandle, type ServeOptions, serve } from './server.js';
export type * from './types.js';
