import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { RowOfTable, TableKey } from '../schema/index.js';
import type { Sink, Verdict } from './types.js';
import { concatData, type Batch, type ChunkWriter } from '../batch/index.js';
import { LinesWriter } from './lines-writer.js';

export interface LocalSinkOptions {
  directory: string;
  maxFileBytes: number;
  maxFiles: number;
  tableNames: Record<TableKey, string>;
}

interface OpenFile {
  handle: FileHandle;
  path: string;
  bytes: number;
}

/**
 * The embedded default sink: one JSON object per row, keys exactly the table's column names, in
 * rotating files `<directory>/<Table>-<UTC start time>-<seq>.jsonl`. Needs no Azure account; what
 * `npm start`, `replay` and the tests use.
 */
export class LocalFileSink implements Sink {
  readonly name = 'local';
  private readonly files = new Map<TableKey, OpenFile>();
  private seq = 0;

  constructor(private readonly opts: LocalSinkOptions) {}

  readonly maxBatchBytes = 8 * 1024 * 1024;
  readonly routes = ['file'];

  writer<K extends TableKey>(_table: K): ChunkWriter<RowOfTable[K]> {
    return new LinesWriter<RowOfTable[K]>(jsonLine);
  }

  /** A file that cannot be written (a full disk, a directory removed) is tried again: nothing here is refused for good. */
  classify(err: unknown): Verdict {
    const e = err as NodeJS.ErrnoException;
    return { action: 'retry', reason: 'io', status: null, detail: e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? err) };
  }

  async setAside(): Promise<void> {
    throw new Error('the local sink refuses nothing for good');
  }

  async send(batch: Batch): Promise<void> {
    if (batch.rows === 0) return;
    const data = concatData(batch);
    const file = await this.fileFor(batch.table);
    await file.handle.write(data);
    file.bytes += data.length;
    if (file.bytes >= this.opts.maxFileBytes) await this.rotate(batch.table);
  }

  private async fileFor(table: TableKey): Promise<OpenFile> {
    const open_ = this.files.get(table);
    if (open_) return open_;
    // Made (again) whenever a file is opened: a directory that could not be made, or was removed,
    // is tried again with the next batch rather than failing every write from then on.
    await mkdir(this.opts.directory, { recursive: true });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    const path = join(this.opts.directory, `${this.opts.tableNames[table]}-${stamp}-${String(this.seq++).padStart(4, '0')}.jsonl`);
    const handle = await open(path, 'a');
    const f = { handle, path, bytes: 0 };
    this.files.set(table, f);
    return f;
  }

  private async rotate(table: TableKey): Promise<void> {
    const f = this.files.get(table);
    if (!f) return;
    this.files.delete(table);
    await f.handle.close();
    if (this.opts.maxFiles > 0) await this.prune(this.opts.tableNames[table]);
  }

  /** Keep the newest maxFiles files of a table (names sort by time). */
  private async prune(tableName: string): Promise<void> {
    const mine = (await readdir(this.opts.directory)).filter((n) => n.startsWith(`${tableName}-`) && n.endsWith('.jsonl')).sort();
    const excess = mine.length - this.opts.maxFiles;
    for (let i = 0; i < excess; i++) await rm(join(this.opts.directory, mine[i]!), { force: true });
  }

  async close(): Promise<void> {
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(all.map((f) => f.handle.close()));
  }
}

/** A row as the local sink writes it: every column, nulls included. JSON.stringify throws on a row it cannot write. */
function jsonLine(row: unknown): string {
  return JSON.stringify(row);
}
