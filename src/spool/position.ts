/**
 * Where a record is in the spool, as one number that orders records the way they were appended:
 * the segment's sequence number times 2^32 plus the record's byte offset in it. Segments are
 * numbered upwards and never reach 4 GiB (spool.segmentBytes), so the number stays exact.
 */

const SEGMENT_SPAN = 2 ** 32;

export function positionOf(segment: number, offset: number): number {
  return segment * SEGMENT_SPAN + offset;
}

export function segmentOf(position: number): number {
  return Math.floor(position / SEGMENT_SPAN);
}

export function offsetOf(position: number): number {
  return position % SEGMENT_SPAN;
}

/** A position as `segment:offset`, for logs and dead letters. */
export function describePosition(position: number): string {
  return `${segmentOf(position)}:${offsetOf(position)}`;
}
