export { Batcher, type BatcherOptions, type BatcherHooks } from './batcher.js';
