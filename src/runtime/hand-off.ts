import type { Batcher, EncodedChunk } from '../batch/index.js';
import type { DecidedLine } from '../extract/index.js';
import type { TableKey } from '../schema/index.js';
import type { Receipt } from '../spool/index.js';

/**
 * Rows made from a spooled record go to the batcher with the record's receipt, which expects them
 * and hears back from the sink as each slice is delivered. This is the only place rows meet receipts.
 */
export function handOff(chunks: readonly { table: TableKey; chunk: EncodedChunk }[], receipt: Receipt, batcher: Batcher): void {
  for (const { table, chunk } of chunks) {
    receipt.expect(chunk.rows);
    batcher.add(table, chunk, receipt);
  }
}

/**
 * Lines a request decided (finished or gave up) while it was made into rows: the requests that
 * brought their pieces stay in the spool until this one is settled, so that a replay has every
 * piece again; then the lines' holds on them go.
 */
export function keepPiecesUntil(lines: readonly DecidedLine[], decider: Receipt): void {
  for (const line of lines) {
    for (const s of line.sources) (s as Receipt).keepUntil(decider);
    for (const h of line.holds) h.release();
  }
}
