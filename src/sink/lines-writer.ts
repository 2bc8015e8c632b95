import type { ChunkWriter, EncodedChunk } from '../batch/index.js';

/** Milliseconds of a row's TimeGenerated (every table's first column), NaN without one. */
export function timeOfRow(row: unknown): number {
  const t = (row as { TimeGenerated?: unknown }).TimeGenerated;
  return typeof t === 'string' ? Date.parse(t) : Number.NaN;
}

/**
 * Rows as newline-terminated text, one `line(row)` each (JSON lines). Each line goes straight into
 * a growing buffer outside the JS heap: a request's text held as strings until the end would be
 * copied by every young-generation collection that runs meanwhile, and promoted.
 */
export class LinesWriter<Row> implements ChunkWriter<Row> {
  private buf: Buffer;
  private used = 0;
  private readonly times: number[] = [];

  constructor(
    private readonly line: (row: Row) => string,
    initialBytes = 64 * 1024,
  ) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  add(row: Row): void {
    const l = this.line(row);
    // UTF-8 takes at most 3 bytes per UTF-16 unit, plus the newline.
    const need = this.used + l.length * 3 + 1;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    this.used += this.buf.write(l, this.used, 'utf8');
    this.buf[this.used++] = 10;
    this.times.push(timeOfRow(row));
  }

  finish(): EncodedChunk | null {
    if (this.times.length === 0) return null;
    // A copy of what was written: the writer's buffer is mostly spare room.
    const data = Buffer.from(this.buf.subarray(0, this.used));
    return { data, rows: this.times.length, ends: null, times: Float64Array.from(this.times) };
  }
}
