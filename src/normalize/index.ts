export { normalizeFlow } from './flow-row.js';
export { normalizeEvent } from './event-row.js';
export { splitNodeName, type Envelope } from './envelope.js';
