import { Unpackr } from 'msgpackr';
import { EventTime } from './event-time.js';
import type { Decoded, LogRecord, TooMany } from './types.js';
import { boundedJson, isMap } from '../json-values.js';
import { msgpackSpans } from './msgpack-spans.js';

// Plain objects for maps (records are read by key), no msgpackr record extension, and 64-bit
// integers as numbers: Fluent Bit never sends integers past 2^53 in log records.
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });

function timeOf(t: unknown): number | null {
  if (t instanceof EventTime) return t.toSeconds();
  if (typeof t === 'number' && Number.isFinite(t)) return t;
  return null;
}

/** A record map: msgpack also decodes event times and binary strings to objects. */
const isRecordMap = (v: unknown): v is Record<string, unknown> => isMap(v) && !(v instanceof EventTime) && !Buffer.isBuffer(v);

/**
 * One Fluent Bit event: `[[time, {metadata}], {record}]` (Fluent Bit 2.1+) or `[time, {record}]`
 * (older versions and some inputs), time being EventTime, an integer or a float.
 */
export function eventToRecord(ev: unknown): LogRecord | string {
  if (!Array.isArray(ev) || ev.length !== 2) return 'an event must be a 2-element array';
  const [head, record] = ev as [unknown, unknown];
  if (!isRecordMap(record)) return 'the event record is not a map';
  if (Array.isArray(head)) {
    if (head.length < 1 || head.length > 2) return 'the event header must be [time, metadata]';
    return { record, timeSec: timeOf(head[0]) };
  }
  return { record, timeSec: timeOf(head) };
}

export interface MsgpackLimits {
  /** Most events (records and bad events together). */
  maxItems: number;
  /** Most values declared in the body, every element of every array and map counted. */
  maxValues: number;
  /** Largest encoded event, in bytes. */
  maxEventBytes: number;
}

/** Entries one array or map may declare: far above any Fluent Bit record, far below a bomb. */
const MAX_CONTAINER = 65_536;

/**
 * Decode a Fluent Bit `Format msgpack` body: concatenated events, each checked on its own. The
 * events are found first without decoding (msgpack-spans.ts), so what their headers declare is
 * bounded before anything is allocated, an event over maxEventBytes is set aside undecoded, and a
 * corrupt event costs only itself. Past `maxItems` events or `maxValues` values the body is
 * refused whole (TooMany).
 */
export function decodeMsgpack(body: Buffer, limits: MsgpackLimits): Decoded | TooMany {
  const found = msgpackSpans(body, MAX_CONTAINER, limits.maxValues, limits.maxItems);
  if (found.tooManyItems) return { tooMany: 'records' };
  if (found.tooManyValues) return { tooMany: 'values' };
  const out: Decoded = { records: [], bad: [] };
  const take = (ev: unknown) => {
    const r = eventToRecord(ev);
    if (typeof r === 'string') out.bad.push({ reason: 'invalid_event', message: r, raw: boundedJson(ev, safeReplacer) });
    else out.records.push(r);
  };
  let oversize = false;
  for (let i = 0, start = 0; i < found.ends.length; start = found.ends[i++]!) if (found.ends[i]! - start > limits.maxEventBytes) oversize = true;
  const soundEnd = found.ends.length > 0 ? found.ends[found.ends.length - 1]! : 0;
  let decodedAll = false;
  if (!oversize && soundEnd > 0) {
    // Common case: one pass over the sound part (per-event calls cost msgpackr twice as much).
    const events: unknown[] = [];
    try {
      unpackr.unpackMultiple(body.subarray(0, soundEnd), (ev: unknown) => {
        events.push(ev);
        return true;
      });
      decodedAll = true;
    } catch {
      // A value the walk found sound that msgpackr still refuses: decoded one by one below.
    }
    if (decodedAll) for (const ev of events) take(ev);
  }
  if (!decodedAll) {
    for (let i = 0, start = 0; i < found.ends.length; start = found.ends[i++]!) {
      const end = found.ends[i]!;
      if (end - start > limits.maxEventBytes) {
        out.bad.push({ reason: 'event_too_large', message: `a ${end - start}-byte event exceeds limits.maxRecordBytes (${limits.maxEventBytes})`, raw: body.subarray(start, end).toString('base64') });
        continue;
      }
      let ev: unknown;
      try {
        ev = unpackr.unpack(body.subarray(start, end));
      } catch (err) {
        out.bad.push({ reason: 'invalid_msgpack', message: `msgpack decoding failed at byte ${start} of ${body.length}: ${(err as Error).message}`, raw: body.subarray(start, end).toString('base64') });
        continue;
      }
      take(ev);
    }
  }
  if (found.unsound) {
    // msgpack has no framing: after a corrupt byte nothing further can be trusted, so the tail is
    // set aside whole, and everything before it goes on.
    out.bad.push({
      reason: 'invalid_msgpack',
      message: `msgpack decoding failed at byte ${found.unsound.offset} of ${body.length}: ${found.unsound.reason}`,
      raw: body.subarray(found.unsound.offset).toString('base64'),
    });
  }
  return out;
}

function safeReplacer(_k: string, v: unknown): unknown {
  if (v instanceof EventTime) return { seconds: v.seconds, nanoseconds: v.nanoseconds };
  if (typeof v === 'bigint') return v.toString();
  return v;
}
