import { SCHEMA_VERSION, type EventRow } from '../schema/index.js';
import { nonEmpty as str } from '../json-values.js';
import { LOST_EVENT_SOURCE, enumName } from './enums.js';
import { splitNodeName, timeGenerated, type Envelope } from './envelope.js';
import { MAX, count } from './record-values.js';

/**
 * lost_events, agent_event, debug_event and node_status records to one HubbleEvents row. The
 * payload is kept whole in Details, so a field of the wrong type is only left out of its column;
 * a lost-event count that cannot be one throws InvalidValue (it would skew the audit gap).
 */
export function normalizeEvent(kind: string, payload: Record<string, unknown>, env: Envelope, defaultCluster: string): EventRow {
  const node = splitNodeName(env.nodeName ?? str(payload.node_name), defaultCluster);
  const isLost = kind === 'lost_events';
  return {
    TimeGenerated: timeGenerated(str(payload.time), env),
    Cluster: node.cluster,
    NodeName: node.node,
    EventKind: kind,
    // lost_events name their ring buffer in `source`; the other kinds carry a `type`.
    Type: isLost ? enumName(payload.source, LOST_EVENT_SOURCE) : str(payload.type),
    NumEventsLost: isLost ? (count(payload.num_events_lost, 'lost_events.num_events_lost', MAX.count) ?? 0) : null,
    Details: payload,
    ReceiverNode: null,
    RunId: null,
    SchemaVersion: SCHEMA_VERSION,
  };
}
