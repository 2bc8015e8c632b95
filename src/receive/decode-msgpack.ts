import { Unpackr } from 'msgpackr';
import { EventTime } from './event-time.js';
import type { Decoded, LogRecord, TooMany } from './types.js';
import { boundedJson, dataMap, isMap } from '../json-values.js';
import { msgpackSpans } from './msgpack-spans.js';

// Plain objects for maps (records are read by key), no msgpackr record extension, and 64-bit
// integers as numbers: Fluent Bit never sends integers past 2^53 in log records.
const objects = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
// msgpackr keeps a `__proto__` key off the prototype by renaming it `__proto_`: the data changes
// (and may collide with a real `__proto_`). A body whose decoded maps hold a `__proto_` key is
// decoded again into Maps, then into maps without a prototype, where `__proto__` is a key like any
// other. Only such bodies pay for the second pass; finding them walks the decoded maps and arrays
// (strings are not read), which costs a tenth of searching every byte of the body for the name.
const maps = new Unpackr({ mapsAsObjects: false, useRecords: false, int64AsType: 'number' });
const RENAMED_PROTO = '__proto_';

interface EventReader {
  unpackMultiple(body: Buffer, each: (ev: unknown) => boolean): void;
  unpack(body: Buffer): unknown;
}

const plainReader: EventReader = {
  unpackMultiple: (body, each) => void objects.unpackMultiple(body, each),
  unpack: (body) => objects.unpack(body),
};

const mapsReader: EventReader = {
  unpackMultiple: (body, each) => void maps.unpackMultiple(body, (ev: unknown) => each(withoutPrototypes(ev))),
  unpack: (body) => withoutPrototypes(maps.unpack(body)),
};

/**
 * Whether values decoded in object mode hold a map with a `__proto_` key (a renamed `__proto__`,
 * or a real one). Walked with a stack of its own: nesting as deep as msgpackr decodes cannot
 * overflow the call stack here.
 */
function holdsRenamedProto(values: readonly unknown[]): boolean {
  const stack: unknown[] = [];
  for (let i = values.length - 1; i >= 0; i--) stack.push(values[i]);
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const x of v as unknown[]) if (typeof x === 'object' && x !== null) stack.push(x);
      continue;
    }
    // Plain objects only: msgpackr's maps. EventTime, Buffers (bin) and the like hold no keys from input.
    if (Object.getPrototypeOf(v) !== Object.prototype) continue;
    if (Object.prototype.hasOwnProperty.call(v, RENAMED_PROTO)) return true;
    for (const k in v as Record<string, unknown>) {
      const x = (v as Record<string, unknown>)[k];
      if (typeof x === 'object' && x !== null) stack.push(x);
    }
  }
  return false;
}

/**
 * Maps (as msgpackr decodes them with mapsAsObjects off) into maps without a prototype, keys as
 * msgpackr's own object mode makes them: strings as they are, numbers and booleans as their text.
 * Arrays are rewritten in place; every other value is left as it is.
 */
function withoutPrototypes(v: unknown): unknown {
  if (v instanceof Map) {
    const out = dataMap();
    for (const [k, x] of v as Map<unknown, unknown>) out[mapKey(k)] = withoutPrototypes(x);
    return out;
  }
  if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = withoutPrototypes(v[i]);
  return v;
}

function mapKey(k: unknown): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'boolean' || typeof k === 'bigint') return k.toString();
  if (k === null) return 'null';
  throw new Error(`a map key is not a string or a number (a ${Array.isArray(k) ? 'array' : typeof k})`);
}

function timeOf(t: unknown): number | null {
  if (t instanceof EventTime) return t.toSeconds();
  if (typeof t === 'number' && Number.isFinite(t)) return t;
  return null;
}


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
  if (!oversize && found.foreign.length === 0 && soundEnd > 0) {
    // Common case: one pass over the sound part (per-event calls cost msgpackr twice as much).
    let events: unknown[] = [];
    try {
      const each = (ev: unknown) => {
        events.push(ev);
        return true;
      };
      plainReader.unpackMultiple(body.subarray(0, soundEnd), each);
      if (holdsRenamedProto(events)) {
        events = [];
        mapsReader.unpackMultiple(body.subarray(0, soundEnd), each);
      }
      decodedAll = true;
    } catch {
      // A value the walk found sound that msgpackr still refuses: decoded one by one below.
    }
    if (decodedAll) for (const ev of events) take(ev);
  }
  if (!decodedAll) {
    let nextForeign = 0;
    for (let i = 0, start = 0; i < found.ends.length; start = found.ends[i++]!) {
      const end = found.ends[i]!;
      const foreign = found.foreign[nextForeign];
      if (foreign !== undefined && foreign.index === i) {
        nextForeign++;
        out.bad.push({
          reason: 'invalid_msgpack',
          message: `the event at byte ${start} of ${body.length} holds msgpack extension type ${foreign.extType}; Fluent Bit writes only type 0 (EventTime)`,
          raw: body.subarray(start, end).toString('base64'),
        });
        continue;
      }
      if (end - start > limits.maxEventBytes) {
        out.bad.push({ reason: 'event_too_large', message: `a ${end - start}-byte event exceeds limits.maxRecordBytes (${limits.maxEventBytes})`, raw: body.subarray(start, end).toString('base64') });
        continue;
      }
      let ev: unknown;
      try {
        ev = plainReader.unpack(body.subarray(start, end));
        if (holdsRenamedProto([ev])) ev = mapsReader.unpack(body.subarray(start, end));
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
