export { Processor, type ProcessorConfig, type SliceInput, type CheckpointInput } from './processor.js';
export type { Output, RowStamp } from './output.js';
export { addCounts, emptyCounts, type Counts } from './counts.js';
