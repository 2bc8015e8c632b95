/**
 * Request bodies laid out exactly as Fluent Bit's `http` output writes them, built with
 * @msgpack/msgpack, an encoder independent of the decoder under test.
 */
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { Encoder, ExtensionCodec } from '@msgpack/msgpack';
import snappy from 'snappyjs';

export class FbTime {
  constructor(readonly seconds: number, readonly nanoseconds: number) {}
}

const codec = new ExtensionCodec();
codec.register({
  type: 0,
  encode(v: unknown) {
    if (!(v instanceof FbTime)) return null;
    const b = Buffer.alloc(8);
    b.writeUInt32BE(v.seconds, 0);
    b.writeUInt32BE(v.nanoseconds, 4);
    return b;
  },
  decode() {
    throw new Error('not used');
  },
});
// Fluent Bit encodes a record however deep it is: so does this encoder (its default stops at 100).
const encoder = new Encoder({ extensionCodec: codec, maxDepth: 1000 });

/** msgpack array32 header (0xdd), as Fluent Bit's log event encoder writes it. */
function array32(n: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

const pack = (v: unknown) => Buffer.from(encoder.encode(v));

/** Fluent Bit 2.1+ event: [[EventTime, {metadata}], {record}] with array32 headers. */
export function eventV2(time: FbTime, record: Record<string, unknown>, metadata: Record<string, unknown> = {}): Buffer {
  return Buffer.concat([array32(2), array32(2), pack(time), pack(metadata), pack(record)]);
}

/** Older event: [time, {record}], time as EventTime, integer or float. */
export function eventV1(time: FbTime | number, record: Record<string, unknown>): Buffer {
  return Buffer.concat([array32(2), pack(time), pack(record)]);
}

export function msgpackBody(records: Record<string, unknown>[], start = new FbTime(1_795_161_600, 0)): Buffer {
  return Buffer.concat(records.map((r, i) => eventV2(new FbTime(start.seconds + i, start.nanoseconds), r)));
}

/** `Format json`: an array of records, each with the date key as a double (json_date_format double). */
export function jsonBody(records: Record<string, unknown>[], dateKey = 'date', date: (i: number) => unknown = (i) => 1_795_161_600 + i + 0.5): Buffer {
  return Buffer.from(JSON.stringify(records.map((r, i) => ({ [dateKey]: date(i), ...r }))));
}

/** `Format json_stream`: objects back to back, no separator. */
export function jsonStreamBody(records: Record<string, unknown>[]): Buffer {
  return Buffer.from(records.map((r, i) => JSON.stringify({ date: 1_795_161_600 + i, ...r })).join(''));
}

/** `Format json_lines`: one object per line. */
export function jsonLinesBody(records: Record<string, unknown>[]): Buffer {
  return Buffer.from(records.map((r, i) => JSON.stringify({ date: 1_795_161_600 + i, ...r })).join('\n') + '\n');
}

export function gzip(b: Buffer): Buffer {
  return gzipSync(b);
}

export function snappyRaw(b: Buffer): Buffer {
  return Buffer.from(snappy.compress(b) as Uint8Array);
}

/** zstd single frame, made by the zstd command-line tool (Node 20 has no zstd encoder). */
export function zstd(b: Buffer): Buffer {
  return execFileSync('zstd', ['-q', '-c', '-'], { input: b });
}

export const CONTENT_TYPE = {
  msgpack: 'application/msgpack',
  json: 'application/json',
  json_stream: 'application/json',
  json_lines: 'application/x-ndjson',
} as const;

/** A record as Fluent Bit's tail input with `multiline.parser cri` produces it. */
export function criRecord(line: string, time = '2026-11-20T08:00:01.000000000Z'): Record<string, unknown> {
  return { time, stream: 'stdout', _p: 'F', log: line };
}
