import { Unpackr } from 'msgpackr';
import { EventTime } from './event-time.js';
import type { Decoded, LogRecord, TooMany } from './types.js';
import { boundedJson } from '../json-values.js';

// Plain objects for maps (records are read by key), no msgpackr record extension, and 64-bit
// integers as numbers: Fluent Bit never sends integers past 2^53 in log records.
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });

function timeOf(t: unknown): number | null {
  if (t instanceof EventTime) return t.toSeconds();
  if (typeof t === 'number' && Number.isFinite(t)) return t;
  return null;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof EventTime) && !Buffer.isBuffer(v);

/**
 * One Fluent Bit event: `[[time, {metadata}], {record}]` (Fluent Bit 2.1+) or `[time, {record}]`
 * (older versions and some inputs), time being EventTime, an integer or a float.
 */
export function eventToRecord(ev: unknown): LogRecord | string {
  if (!Array.isArray(ev) || ev.length !== 2) return 'an event must be a 2-element array';
  const [head, record] = ev as [unknown, unknown];
  if (!isMap(record)) return 'the event record is not a map';
  if (Array.isArray(head)) {
    if (head.length < 1 || head.length > 2) return 'the event header must be [time, metadata]';
    return { record, timeSec: timeOf(head[0]) };
  }
  return { record, timeSec: timeOf(head) };
}

/**
 * Decode a Fluent Bit `Format msgpack` body: concatenated events, each checked on its own. Stops
 * at the `maxItems`-th item (records and bad events together): the caller refuses the body then.
 */
export function decodeMsgpack(body: Buffer, maxItems: number): Decoded | TooMany {
  const out: Decoded = { records: [], bad: [] };
  let offset = 0;
  let items = 0;
  try {
    unpackr.unpackMultiple(body, (ev: unknown, _start?: number, end?: number) => {
      if (++items > maxItems) return false;
      const r = eventToRecord(ev);
      if (typeof r === 'string') {
        out.bad.push({ reason: 'invalid_event', message: r, raw: boundedJson(ev, safeReplacer) });
      } else {
        out.records.push(r);
      }
      offset = end ?? offset;
      return true;
    });
  } catch (err) {
    // msgpack has no framing: after a corrupt byte nothing further can be trusted, so the tail is
    // set aside whole, and everything before it goes on.
    out.bad.push({
      reason: 'invalid_msgpack',
      message: `msgpack decoding failed at byte ${offset} of ${body.length}: ${(err as Error).message}`,
      raw: body.subarray(offset).toString('base64'),
    });
  }
  return items > maxItems ? { tooMany: items } : out;
}

function safeReplacer(_k: string, v: unknown): unknown {
  if (v instanceof EventTime) return { seconds: v.seconds, nanoseconds: v.nanoseconds };
  if (typeof v === 'bigint') return v.toString();
  return v;
}
