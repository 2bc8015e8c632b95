/**
 * fzstd allocates each frame's window (or its declared content size) before it decodes a byte, and
 * takes no output limit. What a body's frames declare is read here from their headers (RFC 8878
 * sections 3.1.1 and 3.1.2), walking block headers to find where each frame ends, so that a body
 * whose frames declare more than the limit is refused before anything is allocated.
 */

const ZSTD_MAGIC = 0xfd2fb528;

export interface ZstdDeclared {
  /** Largest window a frame asks for (the buffer fzstd allocates for it). */
  largestWindow: number;
  /** Sum of the content sizes frames declare (a frame may declare none). */
  contentBytes: number;
  /** Sum over frames of blocks times window: what a decoder that shifts its window once per block moves. */
  windowShiftBytes: number;
}

/** What the frames of `body` declare, or a reason why it is not a well-formed zstd body. */
export function zstdDeclared(body: Uint8Array): ZstdDeclared | string {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let pos = 0;
  let largestWindow = 0;
  let contentBytes = 0;
  let windowShiftBytes = 0;
  if (body.length < 4) return 'shorter than a zstd frame header';
  while (pos < body.length) {
    if (pos + 4 > body.length) return 'trailing bytes after the last frame';
    const magic = view.getUint32(pos, true);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      // Skippable frame: magic, 4-byte size, user data.
      if (pos + 8 > body.length) return 'truncated skippable frame';
      pos += 8 + view.getUint32(pos + 4, true);
      continue;
    }
    if (magic !== ZSTD_MAGIC) return 'bad zstd magic number';
    pos += 4;
    if (pos >= body.length) return 'truncated frame header';
    const fhd = body[pos++]!;
    const fcsFlag = fhd >> 6;
    const singleSegment = (fhd >> 5) & 1;
    const checksum = (fhd >> 2) & 1;
    const dictIdBytes = [0, 1, 2, 4][fhd & 3]!;
    if (fhd & 8) return 'reserved bit set in the frame header';
    let window = 0;
    if (!singleSegment) {
      if (pos >= body.length) return 'truncated frame header';
      const wd = body[pos++]!;
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    pos += dictIdBytes;
    const fcsBytes = fcsFlag === 0 ? singleSegment : 2 ** fcsFlag;
    if (pos + fcsBytes > body.length) return 'truncated frame header';
    let fcs = -1;
    if (fcsBytes === 1) fcs = body[pos]!;
    else if (fcsBytes === 2) fcs = view.getUint16(pos, true) + 256;
    else if (fcsBytes === 4) fcs = view.getUint32(pos, true);
    else if (fcsBytes === 8) fcs = view.getUint32(pos, true) + view.getUint32(pos + 4, true) * 2 ** 32;
    pos += fcsBytes;
    if (singleSegment) window = fcs;
    let blocks = 0;
    for (;;) {
      blocks++;
      if (pos + 3 > body.length) return 'truncated block header';
      const bh = body[pos]! | (body[pos + 1]! << 8) | (body[pos + 2]! << 16);
      pos += 3;
      const last = bh & 1;
      const type = (bh >> 1) & 3;
      const size = bh >>> 3;
      if (type === 3) return 'reserved block type';
      // Raw and compressed blocks hold `size` bytes; an RLE block holds one byte repeated `size` times.
      pos += type === 1 ? 1 : size;
      if (pos > body.length) return 'truncated block';
      if (last) break;
    }
    if (checksum) pos += 4;
    largestWindow = Math.max(largestWindow, window);
    if (fcs > 0) contentBytes += fcs;
    windowShiftBytes += blocks * window;
  }
  return { largestWindow, contentBytes, windowShiftBytes };
}
