import { brotliCompressSync, constants as zc } from 'node:zlib';

/**
 * A request as received, kept in the spool instead of the rows made from it: the compressed body is
 * a tenth of the rows' JSON and costs nothing to produce, where serializing every row cost as much
 * as the rest of the pipeline (bench). Replay runs the body through the stages again.
 *
 *   0  1  layout version (1)
 *   1  1  length F of the body format, then F bytes (ASCII: msgpack, json, json_lines)
 *   …  1  length E of the Content-Encoding, then E bytes (ASCII, may be empty)
 *   …  8  when it was received: milliseconds since the epoch (float64 BE), so that replay stamps
 *         what it derives (identity rows, dead letters) with the original time
 *   …  1  flags (version 2): 1 = it was made into rows when it arrived (else it was parked)
 *   …  …  the body, as received
 */

export interface SpooledRequest {
  format: string;
  encoding: string;
  receivedAt: number;
  body: Buffer;
  /**
   * Whether it was made into rows (and counted) when it arrived; false when it was parked first
   * (layout version 2; version 1 records were always made into rows).
   */
  processed: boolean;
}

/**
 * A request as it is best kept: a body that came uncompressed is stored with brotli at quality 1
 * (encoding `br`), about a twentieth of its size for a couple of microseconds per flow, so that an
 * outage holds as many flows in the spool as with compressed bodies. Others are kept as they came.
 */
export function compacted(r: SpooledRequest): SpooledRequest {
  if (r.encoding !== '' && r.encoding.toLowerCase() !== 'identity') return r;
  const body = brotliCompressSync(r.body, { params: { [zc.BROTLI_PARAM_QUALITY]: 1, [zc.BROTLI_PARAM_SIZE_HINT]: r.body.length } });
  return { ...r, encoding: 'br', body };
}

/** Version 1 had no flags byte; version 2 adds it after the time. */
const VERSION = 2;
const FLAG_PROCESSED = 1;

/** The request as the parts of a payload: its head, then the body as it is (not copied). */
export function encodeRequest(r: SpooledRequest): Buffer[] {
  const format = Buffer.from(r.format, 'latin1');
  const encoding = Buffer.from(r.encoding, 'latin1');
  if (format.length > 255 || encoding.length > 255) throw new Error('format or encoding name too long to spool');
  const head = Buffer.alloc(1 + 1 + format.length + 1 + encoding.length + 8 + 1);
  let o = head.writeUInt8(VERSION, 0);
  o = head.writeUInt8(format.length, o);
  o += format.copy(head, o);
  o = head.writeUInt8(encoding.length, o);
  o += encoding.copy(head, o);
  o = head.writeDoubleBE(r.receivedAt, o);
  head.writeUInt8(r.processed ? FLAG_PROCESSED : 0, o);
  return [head, r.body];
}

/** The request in a payload, or null when the payload is not one this version can read. */
export function decodeRequest(p: Buffer): SpooledRequest | null {
  const version = p.length < 11 ? 0 : p.readUInt8(0);
  if (version !== 1 && version !== VERSION) return null;
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
  if (version === 1) return { format, encoding, receivedAt, body: p.subarray(o), processed: true };
  if (o + 1 > p.length) return null;
  const flags = p.readUInt8(o);
  return { format, encoding, receivedAt, body: p.subarray(o + 1), processed: (flags & FLAG_PROCESSED) !== 0 };
}
