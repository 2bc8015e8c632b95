import { readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

/** The dead-letter directory is at its cap: the batch stays pending (in the spool) instead. */
export class DeadLetterDirectoryFull extends Error {
  constructor(dir: string, bytes: number, max: number) {
    super(`dead-letter directory ${dir} holds ${bytes} bytes, at sink.kusto.deadLetterMaxBytes (${max}): redrive or remove its batches (hubble-adx redrive)`);
    this.name = 'DeadLetterDirectoryFull';
  }
}

export interface DeadLetterBatch {
  /** The `.reason.json` file: what ADX said, the table, the row count. */
  reasonFile: string;
  rowsFile: string;
  table: string;
}

const ROWS_RE = /\.(jsonl|avro)(\.gz)?$/;

/**
 * Batches ADX refused for good, kept on disk until an operator redrives them: each is
 * `<dir>/<table>-<time>-<pid>-<seq>.jsonl.gz` or `.avro.gz` (the batch as it was sent, gzipped) with `.reason.json` beside it saying why. The directory is capped: past
 * `maxBytes` a write is refused (DeadLetterDirectoryFull), never an older batch deleted.
 */
export class DeadLetterFiles {
  private seq = 0;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly onSize: (bytes: number, batches: number) => void = () => undefined,
  ) {
    this.measure();
  }

  /**
   * What the directory holds now, read from disk each time: an earlier run's batches count against
   * the cap, and a redrive (another process) frees room. Dead letters are rare; the scan is cheap.
   */
  measure(): { bytes: number; batches: number } {
    let bytes = 0;
    let batches = 0;
    try {
      for (const name of readdirSync(this.dir)) {
        if (!ROWS_RE.test(name) && !name.endsWith('.reason.json')) continue;
        bytes += statSync(join(this.dir, name)).size;
        if (ROWS_RE.test(name)) batches++;
      }
    } catch {
      // not there yet, or a file removed while it was read: counted on the next look
    }
    this.onSize(bytes, batches);
    return { bytes, batches };
  }

  /** A batch as it was sent (JSON lines, or an Avro object container file), gzipped. */
  async write(table: string, format: 'multijson' | 'avro', payload: Buffer, rows: number, reason: Record<string, unknown>): Promise<string> {
    const { bytes, batches } = this.measure();
    if (bytes >= this.maxBytes) throw new DeadLetterDirectoryFull(this.dir, bytes, this.maxBytes);
    await mkdir(this.dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    const base = join(this.dir, `${table}-${stamp}-${process.pid}-${String(this.seq++).padStart(4, '0')}`);
    const body = await gzip(payload);
    const meta = JSON.stringify({ table, rows, format, ...reason }, null, 2) + '\n';
    const rowsFile = `${base}.${format === 'avro' ? 'avro' : 'jsonl'}.gz`;
    // Rows first: a batch is listed (by its reason file) only once its rows are all there.
    await writeFile(rowsFile, body);
    await writeFile(`${base}.reason.json`, meta);
    this.onSize(bytes + body.length + Buffer.byteLength(meta), batches + 1);
    return rowsFile;
  }
}

/** The dead-letter batches in a directory, oldest first (names sort by time). */
export async function listDeadLetters(dir: string): Promise<DeadLetterBatch[]> {
  const names = await readdir(dir);
  const out: DeadLetterBatch[] = [];
  for (const name of names.filter((n) => n.endsWith('.reason.json')).sort()) {
    const base = name.slice(0, -'.reason.json'.length);
    const rowsName = [`${base}.jsonl.gz`, `${base}.avro.gz`, `${base}.jsonl`].find((n) => names.includes(n)) ?? null;
    if (!rowsName) continue;
    const meta = JSON.parse(await readFile(join(dir, name), 'utf8')) as { table?: unknown };
    if (typeof meta.table !== 'string') continue;
    out.push({ reasonFile: join(dir, name), rowsFile: join(dir, rowsName), table: meta.table });
  }
  return out;
}

/**
 * What a dead-letter batch holds: an Avro object container file, or rows as JSON lines (gzipped,
 * or plain from an older version).
 */
export async function readDeadLetter(batch: DeadLetterBatch): Promise<{ avro: Buffer } | { rows: Record<string, unknown>[] }> {
  const raw = await readFile(batch.rowsFile);
  const data = batch.rowsFile.endsWith('.gz') ? await gunzip(raw) : raw;
  if (/\.avro(\.gz)?$/.test(batch.rowsFile)) return { avro: data };
  return { rows: data.toString('utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

export async function removeDeadLetter(batch: DeadLetterBatch): Promise<void> {
  await rm(batch.rowsFile, { force: true });
  await rm(batch.reasonFile, { force: true });
}
