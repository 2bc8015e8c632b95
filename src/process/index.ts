export { Processor, type ProcessorConfig, type RequestInput } from './processor.js';
export type { Output } from './output.js';
export type { Counts } from './counts.js';
