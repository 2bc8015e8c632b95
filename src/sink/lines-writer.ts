import type { ChunkWriter, EncodedChunk } from '../batch/index.js';
import { growScratch, returnScratch, takeScratch } from './scratch.js';

const EMPTY = Buffer.alloc(0);

/** Milliseconds of a row's TimeGenerated (every table's first column), NaN without one. */
export function timeOfRow(row: unknown): number {
  const t = (row as { TimeGenerated?: unknown }).TimeGenerated;
  return typeof t === 'string' ? Date.parse(t) : Number.NaN;
}

/**
 * Rows as newline-terminated text, one `line(row)` each (JSON lines). Each line goes straight into
 * a scratch buffer outside the JS heap (a request's text held as strings until the end would be
 * copied by every young-generation collection that runs meanwhile, and promoted); `finish` copies
 * the rows out and gives the buffer back.
 */
export class LinesWriter<Row> implements ChunkWriter<Row> {
  private buf: Buffer;
  private used = 0;
  private readonly times: number[] = [];

  constructor(private readonly line: (row: Row) => string) {
    this.buf = takeScratch(64 * 1024);
  }

  add(row: Row): void {
    const l = this.line(row);
    // UTF-8 takes at most 3 bytes per UTF-16 unit, plus the newline.
    const need = this.used + l.length * 3 + 1;
    if (need > this.buf.length) this.buf = growScratch(this.buf, this.used, need);
    this.used += this.buf.write(l, this.used, 'utf8');
    this.buf[this.used++] = 10;
    this.times.push(timeOfRow(row));
  }

  finish(): EncodedChunk | null {
    const rows = this.times.length;
    // A copy of what was written, exactly its size; the scratch buffer serves the next request.
    const data = rows === 0 ? null : Buffer.from(this.buf.subarray(0, this.used));
    returnScratch(this.buf);
    this.buf = EMPTY;
    if (data === null) return null;
    return { data, rows, ends: null, times: Float64Array.from(this.times) };
  }
}
