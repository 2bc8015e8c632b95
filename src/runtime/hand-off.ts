import type { Batcher, EncodedChunk } from '../batch/index.js';
import type { DecidedLine } from '../extract/index.js';
import type { TableKey } from '../schema/index.js';
import type { Receipt } from '../spool/index.js';

type Chunks = readonly { table: TableKey; chunk: EncodedChunk }[];

/**
 * Rows made from a spooled record go to the batcher with the record's receipt, which expects them
 * and hears back from the sink as each slice is delivered. This is the only place rows meet receipts.
 */
export function handOff(chunks: Chunks, receipt: Receipt, batcher: Batcher): void {
  expectRows(chunks, receipt);
  addRows(chunks, receipt, batcher);
}

/** The receipt expects these rows now (the record cannot leave before they are delivered)... */
export function expectRows(chunks: Chunks, receipt: Receipt): void {
  for (const { chunk } of chunks) receipt.expect(chunk.rows);
}

/** ...and they go to the batcher later: once the checkpoint that counts them is on disk. */
export function addRows(chunks: Chunks, receipt: Receipt, batcher: Batcher): void {
  for (const { table, chunk } of chunks) batcher.add(table, chunk, receipt);
}

/** The rows and encoded bytes of some chunks. */
export function sizeOf(chunks: Chunks): { rows: number; bytes: number } {
  let rows = 0;
  let bytes = 0;
  for (const { chunk } of chunks) {
    rows += chunk.rows;
    bytes += chunk.data.length;
  }
  return { rows, bytes };
}

/**
 * Lines a request decided (finished or gave up) while it was made into rows: the requests that
 * brought their pieces stay in the spool until this one is settled, so that a replay has every
 * piece again; then the lines' holds on them go.
 */
export function keepPiecesUntil(lines: readonly DecidedLine[], decider: Receipt): void {
  for (const line of lines) {
    for (const s of line.sources) (s as Receipt).piecesFor(decider);
    for (const h of line.holds) h.release();
  }
}
