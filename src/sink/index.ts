export type { Sink } from './types.js';
export { LocalFileSink, type LocalSinkOptions } from './local-files.js';
export { createSink } from './create.js';
