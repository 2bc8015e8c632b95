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
  /** The last write of each table: the next one waits for it. */
  private readonly tails = new Map<TableKey, Promise<void>>();
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

  /**
   * The batches of one table are appended one after the other (the batcher writes several at once):
   * two first writes racing each opened a file of their own and one handle leaked, and a rotation
   * could close the handle another write was about to use. One table, one open file, one handle.
   */
  async send(batch: Batch): Promise<void> {
    if (batch.rows === 0) return;
    const table = batch.table;
    const done = (this.tails.get(table) ?? Promise.resolve()).catch(() => undefined).then(() => this.append(table, concatData(batch)));
    this.tails.set(table, done);
    try {
      await done;
    } finally {
      if (this.tails.get(table) === done) this.tails.delete(table);
    }
  }

  private async append(table: TableKey, data: Buffer): Promise<void> {
    const file = await this.fileFor(table);
    await file.handle.write(data);
    file.bytes += data.length;
    if (file.bytes >= this.opts.maxFileBytes) await this.rotate(table);
  }

  private async fileFor(table: TableKey): Promise<OpenFile> {
    const open_ = this.files.get(table);
    if (open_) return open_;
    // Made (again) whenever a file is opened: a directory that could not be made, or was removed,
    // is tried again with the next batch rather than failing every write from then on. Flow data
    // is for this service alone: its directory 0700, its files 0600 (as made; umask may narrow).
    await mkdir(this.opts.directory, { recursive: true, mode: 0o700 });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    const path = join(this.opts.directory, `${this.opts.tableNames[table]}-${stamp}-${String(this.seq++).padStart(4, '0')}.jsonl`);
    const handle = await open(path, 'a', 0o600);
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
    // Writes under way finish first: a handle is closed once nothing is left to append to it.
    await Promise.allSettled([...this.tails.values()]);
    const all = [...this.files.values()];
    this.files.clear();
    await Promise.all(all.map((f) => f.handle.close()));
  }
}

/** A row as the local sink writes it: every column, nulls included. JSON.stringify throws on a row it cannot write. */
function jsonLine(row: unknown): string {
  return JSON.stringify(row);
}
