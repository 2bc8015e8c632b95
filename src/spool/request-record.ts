import { createHash } from 'node:crypto';
import { brotliCompressSync, constants as zc } from 'node:zlib';

/**
 * A request as received, kept in the spool: every request is appended before anything is made of
 * it, and rows are made from what was kept, the same way for a live, a parked and a replayed one.
 * The compressed body is a tenth of the rows' JSON and costs nothing to produce.
 *
 *   0  1  layout version (3; 1 and 2 are still read)
 *   1  1  length F of the body format, then F bytes (ASCII: msgpack, json, json_lines)
 *   …  1  length E of the Content-Encoding, then E bytes (ASCII, may be empty)
 *   …  8  when it was received: milliseconds since the epoch (float64 BE)
 *   …  1  flags (version 2 and later): FLAG_COUNTED_BEFORE, FLAG_AGGREGATE_ALLOWED
 *   … 16  digest of format, encoding and body (version 3): what recognises a resent chunk
 *   …  …  the body, as kept
 */

export interface SpooledRequest {
  format: string;
  encoding: string;
  receivedAt: number;
  body: Buffer;
  /** Fold allowed flows into aggregates: overload.mode aggregate-allowed was under pressure when it came. */
  aggregateAllowed: boolean;
  /** Written by a version before checkpoints, which counted it already when it arrived. */
  countedBefore: boolean;
  /** Identifies the body as kept (see digestOf). */
  digest: Buffer;
}

export const DIGEST_BYTES = 16;
const VERSION = 3;
const FLAG_COUNTED_BEFORE = 1;
const FLAG_AGGREGATE_ALLOWED = 2;

/** The body as it is best kept, with the encoding it is kept in. */
export interface KeptBody {
  encoding: string;
  body: Buffer;
}

/**
 * A body that came uncompressed is kept with brotli at quality 1 (encoding `br`), about a twentieth
 * of its size for a couple of microseconds per flow, so that an outage holds as many flows in the
 * spool as with compressed bodies. Others are kept as they came. Compression is deterministic: a
 * chunk Fluent Bit sends again is kept as the same bytes.
 */
export function keptBody(encoding: string, body: Buffer): KeptBody {
  if (encoding !== '' && encoding !== 'identity') return { encoding, body };
  const kept = brotliCompressSync(body, { params: { [zc.BROTLI_PARAM_QUALITY]: 1, [zc.BROTLI_PARAM_SIZE_HINT]: body.length } });
  return { encoding: 'br', body: kept };
}

/**
 * A digest of a body as kept, with its format and encoding: Fluent Bit sends a chunk it did not see
 * answered again byte for byte (its gzip header has no time in it), so equal digests are a resend.
 * Taken over the kept form, a twentieth of a plain body, so it costs little.
 */
export function digestOf(format: string, kept: KeptBody): Buffer {
  return createHash('sha256').update(format).update('\0').update(kept.encoding).update('\0').update(kept.body).digest().subarray(0, DIGEST_BYTES);
}

/** The request as the parts of a payload: its head, then the body as it is (not copied). */
export function encodeRequest(r: SpooledRequest): Buffer[] {
  const format = Buffer.from(r.format, 'latin1');
  const encoding = Buffer.from(r.encoding, 'latin1');
  if (format.length > 255 || encoding.length > 255) throw new Error('format or encoding name too long to spool');
  if (r.digest.length !== DIGEST_BYTES) throw new Error(`a request digest has ${DIGEST_BYTES} bytes`);
  const head = Buffer.alloc(1 + 1 + format.length + 1 + encoding.length + 8 + 1 + DIGEST_BYTES);
  let o = head.writeUInt8(VERSION, 0);
  o = head.writeUInt8(format.length, o);
  o += format.copy(head, o);
  o = head.writeUInt8(encoding.length, o);
  o += encoding.copy(head, o);
  o = head.writeDoubleBE(r.receivedAt, o);
  o = head.writeUInt8((r.countedBefore ? FLAG_COUNTED_BEFORE : 0) | (r.aggregateAllowed ? FLAG_AGGREGATE_ALLOWED : 0), o);
  r.digest.copy(head, o);
  return [head, r.body];
}

/** The request in a payload, or null when the payload is not one this version can read. */
export function decodeRequest(p: Buffer): SpooledRequest | null {
  const version = p.length < 11 ? 0 : p.readUInt8(0);
  if (version < 1 || version > VERSION) return null;
  let o = 1;
  const f = p.readUInt8(o++);
  if (o + f + 1 > p.length) return null;
  const format = p.toString('latin1', o, o + f);
  o += f;
  const e = p.readUInt8(o++);
  if (o + e + 8 > p.length) return null;
  const encoding = p.toString('latin1', o, o + e);
  o += e;
  const receivedAt = p.readDoubleBE(o);
  o += 8;
  if (version === 1) {
    const body = p.subarray(o);
    return { format, encoding, receivedAt, body, aggregateAllowed: false, countedBefore: true, digest: digestOf(format, { encoding, body }) };
  }
  if (o + 1 > p.length) return null;
  const flags = p.readUInt8(o++);
  const countedBefore = (flags & FLAG_COUNTED_BEFORE) !== 0;
  const aggregateAllowed = (flags & FLAG_AGGREGATE_ALLOWED) !== 0;
  if (version === 2) {
    const body = p.subarray(o);
    return { format, encoding, receivedAt, body, aggregateAllowed, countedBefore, digest: digestOf(format, { encoding, body }) };
  }
  if (o + DIGEST_BYTES > p.length) return null;
  const digest = p.subarray(o, o + DIGEST_BYTES);
  return { format, encoding, receivedAt, body: p.subarray(o + DIGEST_BYTES), aggregateAllowed, countedBefore, digest };
}
