import { mkdirSync } from 'node:fs';
import { describeSystemError, StartupError } from '../startup-error.js';
import { appendFile, open, readdir, readFile, rm, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { TABLE_KEYS, type TableKey } from '../schema/index.js';
import lockfile from 'proper-lockfile';
import { HEADER_BYTES, REQUEST_KIND, decodeRecord, encodeRecord } from './record-format.js';
import { compacted, decodeRequest, encodeRequest, type SpooledRequest } from './request-record.js';

// A rows record names its table by its index in TABLE_KEYS, which only ever grows at the end.

/**
 * What travels with a request's rows to the sink: each batch carries the tokens of the requests
 * whose rows it holds, with counts, and acknowledges them once the sink has taken the batch. It is
 * also the source of the CRI partial pieces its request brought (the extractor counts the
 * unfinished lines holding them in `pendingLines`).
 */
export interface DeliveryToken {
  pendingLines: number;
  /** `rows` of the request's rows are taken by the sink. */
  ack(rows: number): void;
}

/** A token for rows that are not spooled (spool off): nothing to release. */
export class MemoryToken implements DeliveryToken {
  pendingLines = 0;
  ack(): void {}
}

/**
 * A spooled record, kept until every one of its rows is acknowledged and every request it kept
 * (`keepUntilDelivered`) has been let go. Its place in the spool is known once the append is on
 * disk; a token whose append failed is never in the spool, and nothing it is told matters.
 */
export class SpoolToken implements DeliveryToken {
  pendingLines = 0;
  /** @internal where the record starts in its segment: what the acknowledgement file names. */
  segment: Segment | null = null;
  offset = 0;
  private remaining = 0;
  private finished = false;
  private dropped = false;
  private dependents: SpoolToken[] | null = null;

  constructor(private readonly spool: Spool) {}

  /** @internal the rows (and held lines) to acknowledge before the record can go. */
  expect(rows: number): void {
    this.remaining = rows;
    if (rows === 0) this.ack(0);
  }

  /** @internal the append failed: the request was not taken. */
  drop(): void {
    this.dropped = true;
  }

  /** @internal once appended. */
  locate(segment: Segment, offset: number): void {
    this.segment = segment;
    this.offset = offset;
    if (this.finished) this.spool.noteDone(this);
  }

  /** @internal keep `held` (one of its counted rows stands for it) until this record is done. */
  keep(held: SpoolToken): void {
    if (this.finished) held.ack(1);
    else (this.dependents ??= []).push(held);
  }

  ack(rows: number): void {
    if (this.dropped) return;
    this.remaining -= rows;
    if (this.remaining > 0 || this.finished) return;
    this.finished = true;
    if (this.segment) this.spool.noteDone(this);
    // After the record itself: the requests it kept are let go only once it is done.
    if (this.dependents) for (const d of this.dependents) d.ack(1);
    this.dependents = null;
  }
}

interface Segment {
  seq: number;
  path: string;
  bytes: number;
  records: number;
  done: number;
  sealed: boolean;
  /** Offsets of acknowledged records not yet written to the segment's .ack file. */
  acks: number[];
}

export interface SpoolOptions {
  directory: string;
  segmentBytes: number;
  maxBytes: number;
}

export interface SpoolHooks {
  fsyncSeconds(s: number): void;
  /** The lock could not be refreshed, or another process took it. */
  lockLost?(err: Error): void;
}

export type ReplayedRecord =
  | { kind: 'rows'; table: TableKey; rows: unknown[]; token: SpoolToken }
  /** The caller makes the rows again and tells how many with `expect`. */
  | { kind: 'request'; request: SpooledRequest; token: SpoolToken };

interface Waiter {
  parts: Buffer[];
  bytes: number;
  token: SpoolToken;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Write every part, in order, without joining them first (a writev may take fewer than all). */
async function writeAll(h: FileHandle, parts: Buffer[], total: number): Promise<void> {
  let done = 0;
  let rest = parts;
  for (;;) {
    const { bytesWritten } = await h.writev(rest.length > 512 ? rest.slice(0, 512) : rest);
    done += bytesWritten;
    if (done >= total) return;
    // Drop what was written, cutting the part it ended in.
    let skip = bytesWritten;
    let i = 0;
    while (i < rest.length && skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = rest.slice(i);
    if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  }
}

const SEGMENT_RE = /^segment-(\d{16})\.wal$/;
const segmentName = (seq: number) => `segment-${String(seq).padStart(16, '0')}.wal`;
const ackPath = (segPath: string) => segPath.replace(/\.wal$/, '.ack');

async function readAcks(path: string): Promise<Set<number>> {
  try {
    const text = await readFile(path, 'utf8');
    // Only whole lines count: a torn last line is just an acknowledgement not yet recorded.
    const lines = text.endsWith('\n') ? text.split('\n') : text.split('\n').slice(0, -1);
    return new Set(lines.filter((l) => l.length > 0).map(Number));
  } catch {
    return new Set();
  }
}

/**
 * The write-ahead log between receive and sink. A request is acknowledged only once its rows are
 * appended and flushed to disk; appends that arrive while a flush is running are written together
 * by the next one (group commit). When the sink has acknowledged every row of a record, the
 * record's offset is appended to the segment's `.ack` file (not synced: losing one only means a
 * duplicate after a crash), and a segment is deleted once it is sealed and all its records are
 * acknowledged, never before. On start, `replay` hands back the records not acknowledged; a torn or
 * corrupt tail is cut off and reported, never read as rows.
 */
export class Spool {
  private readonly segments = new Map<number, Segment>();
  private active: Segment | null = null;
  private handle: FileHandle | null = null;
  private queue: Waiter[] = [];
  private flushing = false;
  private nextSeq = 0;
  private totalBytes = 0;
  /** Acknowledgement writes and segment removals under way; close() waits for them. */
  private readonly housekeeping = new Set<Promise<void>>();
  private unlock: (() => Promise<void>) | null = null;
  closed = false;

  constructor(
    private readonly o: SpoolOptions,
    private readonly hooks: SpoolHooks,
  ) {
    try {
      mkdirSync(o.directory, { recursive: true });
    } catch (err) {
      throw new StartupError('spool.directory', `cannot create or open ${o.directory} (${describeSystemError(err)})`);
    }
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get segmentCount(): number {
    return this.segments.size;
  }

  /**
   * Take the spool for this process alone: a second hubble-adx on the same directory (two pods on
   * one hostPath) would replay and delete the other's records. The lock is a directory whose
   * mtime the holder refreshes; one left by a killed process is taken over once it is stale.
   */
  async lock(): Promise<void> {
    const staleMs = 5000;
    try {
      this.unlock = await lockfile.lock(this.o.directory, {
        stale: staleMs,
        realpath: false,
        lockfilePath: join(this.o.directory, 'spool.lock'),
        // Twice as long as it takes the lock of a killed process to go stale.
        retries: { retries: 20, minTimeout: 500, maxTimeout: 500, factor: 1 },
        onCompromised: (err) => this.hooks.lockLost?.(err),
      });
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ELOCKED' ? 'another hubble-adx process holds it (spool.lock is fresh)' : describeSystemError(err);
      throw new StartupError('spool.directory', `cannot lock ${this.o.directory}: ${why}`);
    }
  }

  /**
   * A request record as it was spooled, read back from its segment (a request parked while the
   * pipeline was full, or left by an earlier run).
   */
  async readRequest(token: SpoolToken): Promise<SpooledRequest | null> {
    if (!token.segment) return null;
    const h = await open(token.segment.path, 'r');
    try {
      const head = Buffer.alloc(HEADER_BYTES);
      await h.read(head, 0, HEADER_BYTES, token.offset);
      const len = head.readUInt32BE(4);
      const buf = Buffer.alloc(HEADER_BYTES + len);
      await h.read(buf, 0, buf.length, token.offset);
      const r = decodeRecord(buf, 0);
      return r.ok && r.tableIndex === REQUEST_KIND ? decodeRequest(Buffer.from(r.payload)) : null;
    } finally {
      await h.close();
    }
  }

  /**
   * Read every record left by an earlier run, oldest first; each comes with its token, whose rows
   * are told with `expect` once they are made again. Torn or corrupt tails are cut from
   * their segment; `torn` counts them. The segments read are sealed: new appends go to a new one.
   */
  async *replay(report: (file: string, offset: number, reason: string) => void): AsyncGenerator<ReplayedRecord> {
    const names = (await readdir(this.o.directory)).filter((n) => SEGMENT_RE.test(n)).sort();
    for (const name of names) {
      const seq = Number(SEGMENT_RE.exec(name)![1]);
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
      const path = join(this.o.directory, name);
      const buf = await readFile(path);
      const acked = await readAcks(ackPath(path));
      const seg: Segment = { seq, path, bytes: 0, records: 0, done: 0, sealed: true, acks: [] };
      this.segments.set(seq, seg);
      const found: ReplayedRecord[] = [];
      let offset = 0;
      for (;;) {
        const r = decodeRecord(buf, offset);
        if (!r.ok) {
          if (r.reason !== 'end') {
            report(path, offset, r.reason);
            await truncate(path, offset);
          }
          break;
        }
        let item: ReplayedRecord | null = null;
        if (r.tableIndex === REQUEST_KIND) {
          const request = decodeRequest(r.payload);
          if (request) item = { kind: 'request', request, token: this.located(seg, offset) };
        } else {
          const table = TABLE_KEYS[r.tableIndex];
          let rows: unknown[] | null = null;
          try {
            rows = table ? (JSON.parse(r.payload.toString('utf8')) as unknown[]) : null;
          } catch {
            rows = null;
          }
          if (table && Array.isArray(rows)) item = { kind: 'rows', table, rows, token: this.located(seg, offset) };
        }
        if (!item) {
          report(path, offset, 'corrupt');
          await truncate(path, offset);
          break;
        }
        seg.records++;
        if (acked.has(offset)) seg.done++;
        else found.push(item);
        offset = r.next;
      }
      seg.bytes = offset;
      this.totalBytes += offset;
      if (seg.done === seg.records) {
        await this.remove(seg);
        continue;
      }
      for (const f of found) yield f;
    }
  }

  private located(seg: Segment, offset: number): SpoolToken {
    const t = new SpoolToken(this);
    t.segment = seg;
    t.offset = offset;
    return t;
  }

  /** A token for a request about to be made into rows, before it is appended. */
  issue(): SpoolToken {
    return new SpoolToken(this);
  }

  /** Append one table's rows made without a request; resolves once they are on disk (fdatasync). */
  async appendRows(table: TableKey, rows: readonly unknown[]): Promise<SpoolToken> {
    const token = this.issue();
    token.expect(rows.length);
    await this.enqueue(encodeRecord(TABLE_KEYS.indexOf(table), [Buffer.from(JSON.stringify(rows))]), token);
    return token;
  }

  /**
   * Append a request as received, the source of `rows` rows (all tables), plus one for each line it
   * started that is still waiting for pieces; resolves once it is on disk (fdatasync). When the
   * append fails, the token is dropped: the request was not taken.
   */
  async appendRequest(token: SpoolToken, request: SpooledRequest, rows: number): Promise<void> {
    token.expect(rows + token.pendingLines);
    try {
      await this.enqueue(encodeRecord(REQUEST_KIND, encodeRequest(compacted(request))), token);
    } catch (err) {
      token.drop();
      throw err;
    }
  }

  /**
   * Append a request to be made into rows later (the rows in memory are at their bounds): how many
   * rows it makes is told with `expect` once it is.
   */
  async appendParked(request: SpooledRequest): Promise<SpoolToken> {
    const token = this.issue();
    await this.enqueue(encodeRecord(REQUEST_KIND, encodeRequest(compacted(request))), token);
    return token;
  }

  /** How many rows a replayed or parked record made; with none it is acknowledged at once. */
  expect(token: SpoolToken, rows: number): void {
    token.expect(rows + token.pendingLines);
  }

  /**
   * Requests whose CRI pieces were joined into a line of a later request (`until`) stay in the
   * spool until that request is delivered, so that a replay after a crash has every piece of the
   * line. Without `until` (the line made no row) they are let go now.
   */
  keepUntilDelivered(held: readonly unknown[], until: SpoolToken | null): void {
    for (const h of held) {
      if (!(h instanceof SpoolToken)) continue;
      if (until) until.keep(h);
      else h.ack(1);
    }
  }

  private enqueue(parts: Buffer[], token: SpoolToken): Promise<void> {
    if (this.closed) return Promise.reject(new Error('spool is closed'));
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    this.totalBytes += bytes;
    return new Promise((resolve, reject) => {
      this.queue.push({ parts, bytes, token, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const seg = await this.segmentForWrite();
        const parts = batch.length === 1 ? batch[0]!.parts : batch.flatMap((w) => w.parts);
        let total = 0;
        for (const w of batch) total += w.bytes;
        const t0 = performance.now();
        await writeAll(this.handle!, parts, total);
        await this.handle!.datasync();
        this.hooks.fsyncSeconds((performance.now() - t0) / 1000);
        let offset = seg.bytes;
        seg.bytes += total;
        seg.records += batch.length;
        for (const w of batch) {
          w.token.locate(seg, offset);
          w.resolve();
          offset += w.bytes;
        }
        if (seg.bytes >= this.o.segmentBytes) await this.seal();
      } catch (err) {
        for (const w of batch) {
          this.totalBytes -= w.bytes;
          w.reject(err);
        }
      }
    }
    this.flushing = false;
  }

  private async segmentForWrite(): Promise<Segment> {
    if (this.active && this.handle) return this.active;
    const seq = this.nextSeq++;
    const seg: Segment = { seq, path: join(this.o.directory, segmentName(seq)), bytes: 0, records: 0, done: 0, sealed: false, acks: [] };
    this.handle = await open(seg.path, 'a');
    this.active = seg;
    this.segments.set(seq, seg);
    return seg;
  }

  private async seal(): Promise<void> {
    const seg = this.active;
    const h = this.handle;
    this.active = null;
    this.handle = null;
    if (h) await h.close();
    if (seg) {
      seg.sealed = true;
      if (seg.done === seg.records) await this.remove(seg);
    }
  }

  /** @internal every row of a record is acknowledged: frees its segment when it was the last. */
  noteDone(record: SpoolToken): void {
    const seg = record.segment!;
    seg.done++;
    if (seg.sealed && seg.done === seg.records) {
      this.track(this.remove(seg));
      return;
    }
    seg.acks.push(record.offset);
    if (seg.acks.length === 1) setImmediate(() => this.track(this.writeAcks(seg)));
  }

  private track(p: Promise<void>): void {
    this.housekeeping.add(p);
    void p.finally(() => this.housekeeping.delete(p));
  }

  /** Record the acknowledged offsets of a segment (one append for all those of this tick). */
  private async writeAcks(seg: Segment): Promise<void> {
    if (seg.acks.length === 0 || !this.segments.has(seg.seq)) return;
    const text = seg.acks.join('\n') + '\n';
    seg.acks = [];
    await appendFile(ackPath(seg.path), text).catch(() => undefined);
  }

  private async remove(seg: Segment): Promise<void> {
    if (!this.segments.delete(seg.seq)) return;
    this.totalBytes -= seg.bytes;
    await rm(seg.path, { force: true });
    await rm(ackPath(seg.path), { force: true });
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await new Promise((r) => setTimeout(r, 5));
    // Acknowledgements noted this tick, then every write and removal still under way.
    await new Promise((r) => setImmediate(r));
    await Promise.all([...this.housekeeping]);
    if (this.handle) await this.handle.close();
    this.handle = null;
    // A fully acknowledged active segment is not needed for the next start.
    const seg = this.active;
    this.active = null;
    if (seg) {
      seg.sealed = true;
      if (seg.done === seg.records) await this.remove(seg);
    }
    await this.unlock?.().catch(() => undefined);
    this.unlock = null;
  }
}
