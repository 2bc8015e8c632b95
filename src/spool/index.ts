export { Spool, type SpoolRecord, type SpoolOptions, type ReplayedRecord } from './spool.js';
