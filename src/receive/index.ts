export { buildHealthServer, buildReceiver, type IngestTarget, type IngestSummary, type ReceivedRequest, type ReceiverOptions } from './server.js';
export { decodeBody, formatOf } from './body.js';
export { EventTime } from './event-time.js';
export type { LogRecord, Decoded, BadPart, BodyFormat, BodyError } from './types.js';
