import { createHash } from 'node:crypto';

/**
 * One spool record: a request as received (request-record.ts), or the rows of one table made
 * without a request (aggregates, expired partial lines), framed so that a torn or corrupt tail is
 * detected on replay instead of being read.
 *
 *   0  4  magic "HAS1"
 *   4  4  payload length (uint32 BE)
 *   8  4  first 4 bytes of SHA-256(payload)
 *  12  1  kind: REQUEST_KIND, or the table index of a rows record (0 flows, 1 events, 2 dead
 *           letters, 3 identities)
 *  13  3  zero
 *  16  …  payload: the request, or the rows as a UTF-8 JSON array
 */

export const REQUEST_KIND = 0xff;

export const HEADER_BYTES = 16;
const MAGIC = 0x48415331; // "HAS1"

const digest4 = (payload: Buffer) => createHash('sha256').update(payload).digest().readUInt32BE(0);

export function encodeRecord(tableIndex: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(payload.length, 4);
  header.writeUInt32BE(digest4(payload), 8);
  header.writeUInt8(tableIndex, 12);
  return Buffer.concat([header, payload]);
}

export type Decoded =
  | { ok: true; tableIndex: number; payload: Buffer; next: number }
  | { ok: false; reason: 'end' | 'torn' | 'corrupt' };

/** The record at `offset` of a segment's bytes. */
export function decodeRecord(buf: Buffer, offset: number): Decoded {
  if (offset === buf.length) return { ok: false, reason: 'end' };
  if (buf.length - offset < HEADER_BYTES) return { ok: false, reason: 'torn' };
  if (buf.readUInt32BE(offset) !== MAGIC) return { ok: false, reason: 'corrupt' };
  const len = buf.readUInt32BE(offset + 4);
  const end = offset + HEADER_BYTES + len;
  if (end > buf.length) return { ok: false, reason: 'torn' };
  const payload = buf.subarray(offset + HEADER_BYTES, end);
  if (digest4(payload) !== buf.readUInt32BE(offset + 8)) return { ok: false, reason: 'corrupt' };
  return { ok: true, tableIndex: buf.readUInt8(offset + 12), payload, next: end };
}
