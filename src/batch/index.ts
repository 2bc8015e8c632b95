export { Batcher, type BatcherOptions, type Delivery, type DeliveryReceipt } from './batcher.js';
export { batchOf, concatData, sliceBatch, sliceChunk, splitBatch, type Batch, type ChunkWriter, type EncodedChunk } from './encoded.js';
