import { jsonLogMessage, logfmtMessage } from './agent-log-unwrap.js';
import { EXPORTER_KINDS, type ExporterKind, type ParsedLine } from './types.js';
import { isMap } from '../json-values.js';


/** The exporter kind of an already-parsed object, by its top-level key. */
export function exporterKindOf(obj: Record<string, unknown>): ExporterKind | null {
  for (const k of EXPORTER_KINDS) if (isMap(obj[k])) return k;
  return null;
}

/**
 * Substrings that any line carrying an exporter record contains, raw or escaped. A line with none
 * of them is an ordinary agent log line and is skipped without parsing.
 */
const MARKERS = ['flow":', 'flow\\":', 'lost_events', 'agent_event', 'debug_event', 'node_status'];

export function mayCarryRecord(line: string): boolean {
  for (const m of MARKERS) if (line.includes(m)) return true;
  return false;
}

const claimsFlow = (text: string) => text.includes('"flow":') || text.includes('\\"flow\\":');

function parseObject(text: string): Record<string, unknown> | string {
  try {
    const v = JSON.parse(text) as unknown;
    return isMap(v) ? v : 'the line is JSON but not an object';
  } catch (err) {
    return (err as Error).message;
  }
}

/** Classify one cilium-agent stdout line: an exporter record, a line to skip, or a broken record. */
export function parseHubbleLine(line: string): ParsedLine {
  if (line.length === 0) return { ok: false, skip: 'empty_line' };
  // The exporter's own lines start with their kind: `{"flow":{...},"node_name":...,"time":...}`.
  const direct = line.charCodeAt(0) === 0x7b;
  if (!direct && !mayCarryRecord(line)) return { ok: false, skip: 'agent_log' };
  if (direct) {
    const obj = parseObject(line);
    if (typeof obj === 'string') {
      return claimsFlow(line) || mayCarryRecord(line)
        ? { ok: false, dead: 'invalid_json', message: `exporter line is not valid JSON: ${obj}` }
        : { ok: false, skip: 'agent_log' };
    }
    const kind = exporterKindOf(obj);
    if (kind) return { ok: true, kind, obj };
    if ('flow' in obj) return { ok: false, dead: 'invalid_flow', message: 'the "flow" value is not an object' };
    const inner = jsonLogMessage(obj);
    if (inner === null) return { ok: false, skip: 'other_json' };
    return parseWrapped(inner);
  }
  const inner = logfmtMessage(line);
  if (inner === null || inner.charCodeAt(0) !== 0x7b) return { ok: false, skip: 'agent_log' };
  return parseWrapped(inner);
}

function parseWrapped(inner: string): ParsedLine {
  if (!mayCarryRecord(inner)) return { ok: false, skip: 'agent_log' };
  const obj = parseObject(inner);
  if (typeof obj === 'string') {
    return { ok: false, dead: 'invalid_json', message: `exporter record inside an agent log line is not valid JSON: ${obj}` };
  }
  const kind = exporterKindOf(obj);
  return kind ? { ok: true, kind, obj } : { ok: false, skip: 'other_json' };
}
