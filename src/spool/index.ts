export { Spool, type SpoolRecord, type SpoolOptions, type ReplayedRecord } from './spool.js';
export type { SpooledRequest } from './request-record.js';
export { RequestHold } from './request-hold.js';
