export { Spool, MemoryToken, type DeliveryToken, type SpoolToken, type SpoolOptions, type ReplayedRecord } from './spool.js';
export type { SpooledRequest } from './request-record.js';
