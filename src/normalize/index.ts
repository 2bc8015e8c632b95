export { normalizeFlow } from './flow-row.js';
export { normalizeEvent } from './event-row.js';
export { splitNodeName, type Envelope } from './envelope.js';
export { tooDeepColumn, nestsDeeperThan } from './row-depth.js';
export { DeadLetterRows, type DeadLetterLimits } from './dead-letter-rows.js';
export { InvalidValue, MAX, count } from './record-values.js';
