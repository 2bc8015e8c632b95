export { Spool, SpoolLostError, diskFull, type SpoolOptions, type SpoolHooks, type Recovered, type RecoveredRecord, type Appended } from './spool.js';
export { Receipt, type Hold, type Settlement } from './receipt.js';
export { keptBody, digestOf, type SpooledRequest, type KeptBody } from './request-record.js';
export { markBefore, type Mark, type CheckpointHead, type CheckpointRows } from './checkpoint-record.js';
export { describePosition } from './position.js';
