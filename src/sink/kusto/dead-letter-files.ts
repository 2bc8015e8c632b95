import { readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
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
  /** The rows the batch had when it was written, as its reason file says (null when it does not). */
  rows: number | null;
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
    // Refused rows are flow data: the directory 0700 and its files 0600 when the service makes them.
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    const base = join(this.dir, `${table}-${stamp}-${process.pid}-${String(this.seq++).padStart(4, '0')}`);
    const body = await gzip(payload);
    const meta = JSON.stringify({ table, rows, format, ...reason }, null, 2) + '\n';
    const rowsFile = `${base}.${format === 'avro' ? 'avro' : 'jsonl'}.gz`;
    // Rows first: a batch is listed (by its reason file) only once its rows are all there.
    await writeFile(rowsFile, body, { mode: 0o600 });
    await writeFile(`${base}.reason.json`, meta, { mode: 0o600 });
    this.onSize(bytes + body.length + Buffer.byteLength(meta), batches + 1);
    return rowsFile;
  }
}

/** A dead-letter file that cannot be read as a batch: what was wrong, for the operator. */
export interface UnreadableDeadLetter {
  file: string;
  reason: string;
}

/** Why a dead-letter batch cannot be read (or sent as it is): it is left where it is. */
export class DeadLetterUnreadable extends Error {
  constructor(readonly file: string, reason: string) {
    super(reason);
    this.name = 'DeadLetterUnreadable';
  }
}

/**
 * The dead-letter batches in a directory, oldest first (names sort by time). A reason file that
 * cannot be read or parsed is reported in `unreadable`, not thrown: one bad file does not keep
 * the others from being sent.
 */
export async function listDeadLetters(dir: string): Promise<{ batches: DeadLetterBatch[]; unreadable: UnreadableDeadLetter[] }> {
  const names = await readdir(dir);
  const batches: DeadLetterBatch[] = [];
  const unreadable: UnreadableDeadLetter[] = [];
  for (const name of names.filter((n) => n.endsWith('.reason.json')).sort()) {
    const base = name.slice(0, -'.reason.json'.length);
    const rowsName = [`${base}.jsonl.gz`, `${base}.avro.gz`, `${base}.jsonl`].find((n) => names.includes(n)) ?? null;
    if (!rowsName) continue;
    const reasonFile = join(dir, name);
    let meta: unknown;
    try {
      meta = JSON.parse(await readFile(reasonFile, 'utf8'));
    } catch (err) {
      unreadable.push({ file: reasonFile, reason: `the reason file cannot be read: ${(err as Error).message}` });
      continue;
    }
    const table = typeof meta === 'object' && meta !== null ? (meta as { table?: unknown }).table : undefined;
    if (typeof table !== 'string') {
      unreadable.push({ file: reasonFile, reason: 'the reason file names no table' });
      continue;
    }
    const rows = (meta as { rows?: unknown }).rows;
    batches.push({ reasonFile, rowsFile: join(dir, rowsName), table, rows: typeof rows === 'number' && Number.isSafeInteger(rows) && rows >= 0 ? rows : null });
  }
  return { batches, unreadable };
}

/** gunzip that stops at `max` bytes: a gzip bomb among the dead letters costs at most that. */
async function gunzipAtMost(file: string, data: Buffer, max: number): Promise<Buffer> {
  try {
    return await gunzip(data, { maxOutputLength: max });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new DeadLetterUnreadable(file, `it inflates past ${max} bytes, more than any batch hubble-adx writes`);
    throw new DeadLetterUnreadable(file, `it is not a whole gzip file: ${(err as Error).message}`);
  }
}

/**
 * What a dead-letter batch holds: an Avro object container file, or rows as JSON lines (gzipped,
 * or plain from an older version). Reading is bounded: a file whose rows take more than
 * `maxBytes` is not read (DeadLetterUnreadable), nor is one cut short or not JSON.
 */
export async function readDeadLetter(batch: DeadLetterBatch, maxBytes: number): Promise<{ avro: Buffer } | { rows: Record<string, unknown>[] }> {
  const file = batch.rowsFile;
  let raw: Buffer;
  try {
    const size = (await stat(file)).size;
    if (size > maxBytes) throw new DeadLetterUnreadable(file, `it holds ${size} bytes, more than any batch hubble-adx writes (${maxBytes})`);
    raw = await readFile(file);
  } catch (err) {
    if (err instanceof DeadLetterUnreadable) throw err;
    throw new DeadLetterUnreadable(file, `it cannot be read: ${(err as Error).message}`);
  }
  const data = file.endsWith('.gz') ? await gunzipAtMost(file, raw, maxBytes) : raw;
  if (/\.avro(\.gz)?$/.test(file)) return { avro: data };
  const rows: Record<string, unknown>[] = [];
  const lines = data.toString('utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.length === 0) continue;
    try {
      rows.push(JSON.parse(lines[i]!) as Record<string, unknown>);
    } catch (err) {
      throw new DeadLetterUnreadable(file, `line ${i + 1} is not JSON (${(err as Error).message})`);
    }
  }
  return { rows };
}

/**
 * A redriven batch ADX refused again: it stays where it is (writing it anew could need room a full
 * directory does not have), and its reason file says what ADX answered this time.
 */
export async function noteRefusedAgain(batch: DeadLetterBatch, reason: Record<string, unknown>): Promise<void> {
  let meta: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  try {
    const v = JSON.parse(await readFile(batch.reasonFile, 'utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) meta = v as Record<string, unknown>;
  } catch {
    // Listed means it was read a moment ago; if it cannot be now, the new reason alone is written.
  }
  const redrives = typeof meta.redrives === 'number' ? meta.redrives + 1 : 1;
  const next = JSON.stringify({ ...meta, ...reason, table: batch.table, rows: batch.rows ?? meta.rows, redrives, lastRedriveAt: new Date().toISOString() }, null, 2) + '\n';
  const tmp = `${batch.reasonFile}.tmp`;
  await writeFile(tmp, next, { mode: 0o600 });
  await rename(tmp, batch.reasonFile);
}

export async function removeDeadLetter(batch: DeadLetterBatch): Promise<void> {
  await rm(batch.rowsFile, { force: true });
  await rm(batch.reasonFile, { force: true });
}
