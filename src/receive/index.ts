export { buildHealthServer, buildReceiver, type IngestTarget, type IngestSummary, type ReceivedRequest, type ReceiverOptions } from './server.js';
export { decodeBody, formatOf, parseBody } from './body.js';
export { decompress } from './decompress.js';
export { InflightBytes } from './inflight-bytes.js';
export { EventTime } from './event-time.js';
export type { LogRecord, Decoded, BadPart, BodyFormat, BodyError } from './types.js';
export type { BodyResult } from './body.js';
