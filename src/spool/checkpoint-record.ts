import type { TableKey } from '../schema/index.js';

/**
 * A checkpoint in the spool: what the pipeline has counted and made durable up to a mark, the state
 * it needs to go on from there after a crash, and the rows it made at that moment (aggregates whose
 * window ended, lines given up, the coverage row of a window that closed). One record, so that the
 * rows and the mark they go with are durable together or not at all.
 *
 *   0  4  length H of the head (uint32 BE), then H bytes of JSON: { v, mark, state }
 *   …  …  JSON: the rows, by table
 *
 * The head comes first so that finding the latest checkpoint at start reads no rows.
 */

/**
 * Where counting stands: every record before `position` is made into rows and counted, and so are
 * the first `item` records of the request at `position` (a large request is made into rows in slices).
 */
export interface Mark {
  position: number;
  item: number;
}

export interface CheckpointHead {
  mark: Mark;
  /** What the pipeline needs to go on from the mark; the spool does not read it. */
  state: unknown;
}

export type CheckpointRows = Partial<Record<TableKey, unknown[]>>;

const HEAD_VERSION = 1;

export function encodeCheckpoint(head: CheckpointHead, rows: CheckpointRows): Buffer[] {
  const h = Buffer.from(JSON.stringify({ v: HEAD_VERSION, mark: head.mark, state: head.state }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(h.length, 0);
  return [len, h, Buffer.from(JSON.stringify(rows))];
}

/** The head of a checkpoint payload, or null when it is not one this version can read. */
export function decodeCheckpointHead(p: Buffer): CheckpointHead | null {
  if (p.length < 4) return null;
  const n = p.readUInt32BE(0);
  if (4 + n > p.length) return null;
  try {
    const h = JSON.parse(p.toString('utf8', 4, 4 + n)) as { v?: unknown; mark?: Mark; state?: unknown };
    if (h.v !== HEAD_VERSION || !h.mark || typeof h.mark.position !== 'number' || typeof h.mark.item !== 'number') return null;
    return { mark: { position: h.mark.position, item: h.mark.item }, state: h.state };
  } catch {
    return null;
  }
}

/** The rows of a checkpoint payload, or null when they cannot be read. */
export function decodeCheckpointRows(p: Buffer): CheckpointRows | null {
  if (p.length < 4) return null;
  const n = p.readUInt32BE(0);
  try {
    const rows = JSON.parse(p.toString('utf8', 4 + n)) as unknown;
    return typeof rows === 'object' && rows !== null && !Array.isArray(rows) ? (rows as CheckpointRows) : null;
  } catch {
    return null;
  }
}

/** Marks in the order of the records they stand for. */
export function markBefore(a: Mark, b: Mark): boolean {
  return a.position < b.position || (a.position === b.position && a.item < b.item);
}
