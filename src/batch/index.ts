export { Batcher, type BatcherOptions, type BatcherHooks, type RowSource } from './batcher.js';
