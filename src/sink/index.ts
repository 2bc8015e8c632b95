export type { Sink, Verdict } from './types.js';
export { LocalFileSink, type LocalSinkOptions } from './local-files.js';
export { createKustoSink, createSink, deliveryFor, deliveryObserver } from './create.js';
export { RetryChain, DeliveryStopped, type DeliveryObserver, type Delivered } from './retry-chain.js';
export { DeadLetterUnreadable, listDeadLetters, noteRefusedAgain, readDeadLetter, removeDeadLetter, type DeadLetterBatch, type UnreadableDeadLetter } from './kusto/dead-letter-files.js';
export { avroChunkOf } from './kusto/encode-avro.js';
