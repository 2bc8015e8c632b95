export type { Sink } from './types.js';
export { LocalFileSink, type LocalSinkOptions } from './local-files.js';
export { createKustoSink, createSink } from './create.js';
export { DeadLetterUnreadable, listDeadLetters, readDeadLetter, removeDeadLetter, type DeadLetterBatch, type UnreadableDeadLetter } from './kusto/dead-letter-files.js';
export { avroChunkOf } from './kusto/encode-avro.js';
