import type { ChunkWriter, EncodedChunk } from '../batch/index.js';

/** Milliseconds of a row's TimeGenerated (every table's first column), NaN without one. */
export function timeOfRow(row: unknown): number {
  const t = (row as { TimeGenerated?: unknown }).TimeGenerated;
  return typeof t === 'string' ? Date.parse(t) : Number.NaN;
}

/** Rows as newline-terminated text, one `line(row)` each (JSON lines). */
export class LinesWriter<Row> implements ChunkWriter<Row> {
  private text = '';
  private readonly times: number[] = [];

  constructor(private readonly line: (row: Row) => string) {}

  add(row: Row): void {
    const l = this.line(row);
    this.text += l;
    this.text += '\n';
    this.times.push(timeOfRow(row));
  }

  finish(): EncodedChunk | null {
    if (this.times.length === 0) return null;
    const chunk = { data: Buffer.from(this.text), rows: this.times.length, ends: null, times: Float64Array.from(this.times) };
    this.text = '';
    return chunk;
  }
}
