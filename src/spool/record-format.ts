import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * One spool record, framed so that a torn or corrupt tail is detected on replay instead of read:
 *
 *   0  4  magic "HAS2" (or "HAS1", written by earlier versions)
 *   4  4  payload length (uint32 BE)
 *   8  4  CRC-32 of the payload ("HAS1": first 4 bytes of its SHA-256)
 *  12  1  kind (RecordKind), or, in records earlier versions wrote, the table index of a rows record
 *  13  3  zero
 *  16  …  payload
 *
 * CRC-32 finds torn and flipped bytes as well for this purpose, at a fraction of SHA-256's cost
 * over plain bodies ten times the size of gzipped ones.
 */

export const RecordKind = {
  /** A request as received (request-record.ts). */
  request: 0xff,
  /** A checkpoint: what is counted and made durable up to a mark, and the rows made then (checkpoint-record.ts). */
  checkpoint: 0xfe,
  /** The start of a run of the service (its payload is the run's JSON, written and read by spool.ts). */
  run: 0xfd,
} as const;

/** Kinds below this are rows records of earlier versions: the index of their table in TABLE_KEYS. */
export const LEGACY_ROWS_KINDS = 0x10;

export const HEADER_BYTES = 16;
const MAGIC_V1 = 0x48415331; // "HAS1"
const MAGIC = 0x48415332; // "HAS2"

const sha4 = (payload: Buffer) => createHash('sha256').update(payload).digest().readUInt32BE(0);

/** A record as the parts to write one after the other (the payload's parts are not copied). */
export function encodeRecord(kind: number, payload: readonly Buffer[]): Buffer[] {
  let length = 0;
  let crc = 0;
  for (const p of payload) {
    length += p.length;
    crc = crc32(p, crc);
  }
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(length, 4);
  header.writeUInt32BE(crc >>> 0, 8);
  header.writeUInt8(kind, 12);
  return [header, ...payload];
}

export type Decoded =
  | { ok: true; kind: number; payload: Buffer; next: number }
  | { ok: false; reason: 'end' | 'torn' | 'corrupt' };

/** The record at `offset` of a segment's bytes. */
export function decodeRecord(buf: Buffer, offset: number): Decoded {
  if (offset === buf.length) return { ok: false, reason: 'end' };
  if (buf.length - offset < HEADER_BYTES) return { ok: false, reason: 'torn' };
  const magic = buf.readUInt32BE(offset);
  if (magic !== MAGIC && magic !== MAGIC_V1) return { ok: false, reason: 'corrupt' };
  const len = buf.readUInt32BE(offset + 4);
  const end = offset + HEADER_BYTES + len;
  if (end > buf.length) return { ok: false, reason: 'torn' };
  const payload = buf.subarray(offset + HEADER_BYTES, end);
  const sum = magic === MAGIC ? crc32(payload) >>> 0 : sha4(payload);
  if (sum !== buf.readUInt32BE(offset + 8)) return { ok: false, reason: 'corrupt' };
  return { ok: true, kind: buf.readUInt8(offset + 12), payload, next: end };
}

/** The length of the record whose header is `head` (16 bytes), header included. */
export function recordLength(head: Buffer): number {
  return HEADER_BYTES + head.readUInt32BE(4);
}
