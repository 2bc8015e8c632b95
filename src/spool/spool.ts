import { appendFile, mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import lockfile from 'proper-lockfile';
import { describeSystemError, StartupError } from '../startup-error.js';
import { TABLE_KEYS, type TableKey } from '../schema/index.js';
import { decodeCheckpointHead, decodeCheckpointRows, encodeCheckpoint, markBefore, type CheckpointHead, type CheckpointRows } from './checkpoint-record.js';
import { syncDirectory } from './sync-directory.js';
import { judge, latestFence, parseSegmentNames, segmentName, superseded, supersededSync, takeEpoch, writeFence } from './fence.js';
import { positionOf, segmentOf, offsetOf } from './position.js';
import { Receipt, type Settlement } from './receipt.js';
import { HEADER_BYTES, LEGACY_ROWS_KINDS, RecordKind, decodeRecord, encodeRecord, recordLength } from './record-format.js';
import { decodeRequest, encodeRequest, type SpooledRequest } from './request-record.js';
import { ResendFilter } from './resend-filter.js';
import { lockFileSystem } from './lock-fs.js';

/**
 * This process no longer owns the spool directory: another process took it (this one was frozen
 * past the lock's stale time, or its lock was removed). It must answer nothing more and exit.
 */
export class SpoolLostError extends Error {
  constructor(directory: string, why?: string) {
    super(`another process took the spool ${directory}${why ? ` (${why})` : ''}: this one answers nothing more`);
    this.name = 'SpoolLostError';
  }
}

/** A write refused for want of room (the disk, or the user's quota, is full). */
export function diskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export interface SpoolOptions {
  directory: string;
  segmentBytes: number;
  maxBytes: number;
  /** How long the digest of a delivered request is remembered to recognise a resend. */
  resendWindowSeconds: number;
  /** Most digests of delivered requests remembered. */
  resendMaxEntries: number;
  /** A lock not refreshed for this long is taken over (its process died or froze). */
  lockStaleMs: number;
}

/** What the spool does with the segment it appends to. */
export type SegmentFile = Pick<FileHandle, 'writev' | 'datasync' | 'truncate' | 'close'>;

export interface SpoolHooks {
  fsyncSeconds(s: number): void;
  /** Create a new segment file (exclusively, 0600); replaced in tests to make writes fail part-way. */
  createSegment?(path: string): Promise<SegmentFile>;
  /** The resend log could not be written for another reason than a full disk (the records went anyway). */
  resendLogFailed?(err: unknown): void;
}

// Appending (O_APPEND): after a failed write is cut back, the next lands at the new end, not where the failed one stopped.
const createSegment = (path: string): Promise<SegmentFile> => open(path, 'ax', 0o600);

/** A record an earlier run left in the spool and that is not settled. */
export type RecoveredRecord =
  /** Read with `readRequest` when its turn comes (only where it is is kept in memory). */
  | { kind: 'request'; receipt: Receipt; receivedAt: number; aggregateAllowed: boolean; countedBefore: boolean }
  /** Its rows are read with `readCheckpointRows`. */
  | { kind: 'checkpoint'; receipt: Receipt; head: CheckpointHead }
  | { kind: 'run'; receipt: Receipt; run: unknown }
  /** Rows an earlier version spooled as rows (aggregates, expired lines, coverage). */
  | { kind: 'rows'; receipt: Receipt; table: TableKey; rows: unknown[] };

export interface Recovered {
  /** Records not settled, oldest first. */
  records: RecoveredRecord[];
  /** The latest checkpoint in the spool, settled or not: where counting stood. */
  checkpoint: CheckpointHead | null;
  /** Where that checkpoint is (its receipt is among `records` unless it is settled). */
  checkpointPosition: number;
  /** Segments cut at a torn or corrupt record, or cut back and deleted by the fence; a fence that could not be read. */
  cut: { file: string; offset: number; reason: 'torn' | 'corrupt' | 'stray' | 'fence_unreadable'; detail?: string }[];
  /** When the previous holder of the spool was last known to be alive (its lock's last refresh). */
  lastAlive: number | null;
  /** What the previous run wrote when it stopped cleanly (null: it did not, or there was none). */
  cleanStop: unknown;
  /** Whether any run used this spool before (a lock, a segment or a stop marker was found). */
  usedBefore: boolean;
}

/** The outcome of appending a request: its receipt, or the sign that the same body is already spooled or was delivered. */
export type Appended = { receipt: Receipt; resend?: undefined } | { resend: true; receipt?: undefined };

interface Segment {
  seq: number;
  path: string;
  bytes: number;
  records: number;
  settled: number;
  sealed: boolean;
}

/** An acknowledgement (with the digest line of a delivered body, written to the resend log first), or a segment to remove. */
type SettleEntry = { seg: Segment; offset: number; digest: string | null } | { remove: Segment };

interface Waiter {
  parts: Buffer[];
  bytes: number;
  resolve: (r: Receipt) => void;
  reject: (e: unknown) => void;
  /** The digest of a request, added to the resend filter once the record is on disk. */
  digest: string | null;
}

/** Write every part, in order, without joining them first (a writev may take fewer than all). */
async function writeAll(h: SegmentFile, parts: Buffer[], total: number): Promise<void> {
  let done = 0;
  let rest = parts;
  for (;;) {
    const { bytesWritten } = await h.writev(rest.length > 512 ? rest.slice(0, 512) : rest);
    done += bytesWritten;
    if (done >= total) return;
    if (bytesWritten === 0) throw Object.assign(new Error('the spool segment took no bytes'), { code: 'ENOSPC' });
    let skip = bytesWritten;
    let i = 0;
    while (i < rest.length && skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = rest.slice(i);
    if (skip > 0) rest[0] = rest[0]!.subarray(skip);
  }
}

const ackPath = (segPath: string) => segPath.replace(/\.wal$/, '.ack');
const LOCK = 'spool.lock';
const STOPPED = 'stopped-cleanly.json';
const RESENDS = 'resends.log';

/**
 * An acknowledged offset as one line of a `.ack` file: fixed width, so that a line cut short by a
 * full disk and followed by the next append reads as one line of the wrong length, never as a
 * different offset (which would let an unsettled record go).
 */
const ackLine = (offset: number) => `~${offset.toString(16).padStart(12, '0')}\n`;
const ACK_LINE = /^~([0-9a-f]{12})$/;
/** The decimal lines versions before the fixed-width ones wrote. */
const LEGACY_ACK_LINE = /^\d{1,12}$/;

async function readAcks(path: string): Promise<Set<number>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return new Set();
  }
  // Only whole lines count: a torn last line is just an acknowledgement not yet recorded.
  const lines = text.endsWith('\n') ? text.split('\n') : text.split('\n').slice(0, -1);
  const out = new Set<number>();
  for (const line of lines) {
    const m = ACK_LINE.exec(line);
    if (m) out.add(parseInt(m[1]!, 16));
    else if (LEGACY_ACK_LINE.test(line)) out.add(Number(line));
  }
  return out;
}

async function readAt(path: string, position: number): Promise<{ kind: number; payload: Buffer } | null> {
  let h: FileHandle;
  try {
    h = await open(path, 'r');
  } catch (err) {
    // Deleted under this run: only a process that lost the spool while frozen in a removal does that.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const head = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await h.read(head, 0, HEADER_BYTES, offsetOf(position));
    if (bytesRead < HEADER_BYTES) return null;
    const buf = Buffer.alloc(recordLength(head));
    await h.read(buf, 0, buf.length, offsetOf(position));
    const r = decodeRecord(buf, 0);
    return r.ok ? { kind: r.kind, payload: r.payload } : null;
  } finally {
    await h.close();
  }
}

/**
 * The write-ahead log between receive and sink, and the owner of its own lifecycle.
 *
 * `Spool.open` takes the directory for this process alone (a lock, refreshed while it lives, and an
 * owner file checked before every answer), reads what an earlier run left (only what the fence lets
 * it: see fence.ts), cuts torn tails, writes its own fence, and only then returns: nothing is
 * appended before recovery is complete. Records are appended in group
 * commits (written, fdatasynced, then the owner checked) and each gets a receipt; a record leaves
 * the spool once its receipt settles (recorded in the segment's `.ack` file), and a segment is
 * deleted once it is sealed and every record in it is settled. The active segment is never deleted.
 * A write that fails takes the segment back to its last whole record (or, if that fails too,
 * seals it and goes on in a new one) before anything else is appended. A lost lock closes the spool
 * at once: `lost` resolves, and the process must stop.
 */
export class Spool implements Settlement {
  private readonly segments = new Map<number, Segment>();
  private active: Segment | null = null;
  private handle: SegmentFile | null = null;
  private queue: Waiter[] = [];
  private flushing: Promise<void> | null = null;
  private nextSeq = 0;
  private totalBytes = 0;
  /** Ack writes and segment removals, one after the other, in the order they were decided. */
  private chores: Promise<void> = Promise.resolve();
  /** Settled records and removable segments, in the order they settled, not yet on disk. */
  private readonly settleLog: SettleEntry[] = [];
  private settleRetry: NodeJS.Timeout | null = null;
  /** Digests of the request records in the spool, by position. */
  private readonly digests = new Map<number, string>();
  /** Requests being appended, by digest: an equal body arriving meanwhile waits for the outcome. */
  private readonly appending = new Map<string, Promise<Appended>>();
  private unlock: (() => Promise<void>) | null = null;
  private readonly lostError: Promise<Error>;
  private reportLoss!: (err: Error) => void;
  private lostAlready = false;
  /** This start's epoch (see fence.ts): the spool is this process's while no later one is taken. */
  private epoch = 0;
  closed = false;
  recovered!: Recovered;

  private constructor(
    private readonly o: SpoolOptions,
    private readonly hooks: SpoolHooks,
    private readonly resends: ResendFilter,
  ) {
    this.lostError = new Promise((r) => (this.reportLoss = r));
  }

  /** Take the directory, read what an earlier run left, and return the spool ready for appends. */
  static async open(o: SpoolOptions, hooks: SpoolHooks, now = Date.now()): Promise<Spool> {
    try {
      await mkdir(o.directory, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new StartupError('spool.directory', `cannot create or open ${o.directory} (${describeSystemError(err)})`);
    }
    const lastAlive = await stat(join(o.directory, LOCK)).then(
      (s) => s.mtimeMs,
      () => null,
    );
    const spool = new Spool(o, hooks, new ResendFilter(join(o.directory, RESENDS), o.resendWindowSeconds * 1000, o.resendMaxEntries));
    await spool.lock();
    spool.epoch = await takeEpoch(o.directory);
    await spool.resends.load(now);
    spool.recovered = await spool.recover(lastAlive);
    return spool;
  }

  /** The epoch this start took (see fence.ts). */
  get epochTaken(): number {
    return this.epoch;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get segmentCount(): number {
    return this.segments.size;
  }

  /**
   * The position of the first record still on disk (of the next one, when the spool is empty):
   * nothing before it can be read again, by this run or one after a crash.
   */
  get oldestPosition(): number {
    let oldest = this.nextSeq;
    for (const seq of this.segments.keys()) if (seq < oldest) oldest = seq;
    return positionOf(oldest, 0);
  }

  /** Resolves if the lock is lost (another process took the directory): the spool is closed then. */
  get lost(): Promise<Error> {
    return this.lostError;
  }

  /** Digests remembered to recognise resends. */
  get resendDigests(): number {
    return this.resends.size;
  }

  /**
   * A second hubble-adx on the same directory (two pods on one hostPath) would replay and delete
   * the other's records. The lock is a directory whose mtime the holder refreshes; one left by a
   * killed process is taken over once it is stale.
   */
  private async lock(): Promise<void> {
    const stale = this.o.lockStaleMs;
    const every = Math.max(100, Math.round(stale / 10));
    try {
      this.unlock = await lockfile.lock(this.o.directory, {
        stale,
        realpath: false,
        lockfilePath: join(this.o.directory, LOCK),
        // Twice as long as it takes the lock of a killed process to go stale.
        retries: { retries: Math.ceil((2 * stale) / every), minTimeout: every, maxTimeout: every, factor: 1 },
        onCompromised: (err) => this.fail(new SpoolLostError(this.o.directory, err.message)),
        fs: lockFileSystem(() => !this.lostAlready && !(this.epoch > 0 && supersededSync(this.o.directory, this.epoch))),
      });
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ELOCKED' ? 'another hubble-adx process holds it (spool.lock is fresh)' : describeSystemError(err);
      throw new StartupError('spool.directory', `cannot lock ${this.o.directory}: ${why}`);
    }
  }

  /**
   * Checked after every flush, before its requests are answered: a process that was frozen past the
   * lock's stale time and resumes finds that a later start took the next epoch, and answers nothing more.
   */
  private async stillOwner(): Promise<boolean> {
    try {
      return !(await superseded(this.o.directory, this.epoch));
    } catch {
      return false;
    }
  }

  private fail(err: Error): void {
    if (this.lostAlready) return;
    this.lostAlready = true;
    this.closed = true;
    for (const w of this.queue.splice(0)) w.reject(err);
    this.reportLoss(err);
  }

  private async recover(lastAlive: number | null): Promise<Recovered> {
    const dir = this.o.directory;
    const segments = parseSegmentNames(await readdir(dir));
    // A start frozen between its epoch and this listing may resume after a later start took the
    // spool and answered for what it wrote: segments of a later epoch are never this start's to
    // judge, and finding one (or the later epoch itself) means this start lost the spool. Nothing
    // is deleted or cut before that is known; what a later start creates after the listing is not
    // in it, so is never touched.
    const later = segments.find((s) => s.epoch !== null && s.epoch > this.epoch);
    if (later) throw new SpoolLostError(dir, `a later start (epoch ${later.epoch}) wrote ${later.name} while this one (epoch ${this.epoch}) was starting`);
    if (!(await this.stillOwner())) throw new SpoolLostError(dir, `a later start took epoch ${this.epoch + 1} while this one was starting`);
    const out: Recovered = { records: [], checkpoint: null, checkpointPosition: -1, cut: [], lastAlive, cleanStop: null, usedBefore: lastAlive !== null || segments.length > 0 };
    const fence = await latestFence(dir, this.epoch);
    if (fence && 'unreadable' in fence) out.cut.push({ file: fence.file, offset: 0, reason: 'fence_unreadable', detail: fence.unreadable });
    const judged = fence && 'unreadable' in fence ? null : fence;
    try {
      out.cleanStop = JSON.parse(await readFile(join(dir, STOPPED), 'utf8')) as unknown;
      out.usedBefore = true;
    } catch {
      out.cleanStop = null;
    }
    // The marker says how the run before this one ended; from now on this run is the one that may crash.
    await rm(join(dir, STOPPED), { force: true });
    for (const { name, seq, epoch } of segments) {
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
      const path = join(dir, name);
      const verdict = judge(judged, { name, seq, epoch });
      if (!verdict.keep) {
        // Written by a process after it lost the spool: it answered none of it.
        out.cut.push({ file: path, offset: 0, reason: 'stray' });
        await rm(path, { force: true });
        await rm(ackPath(path), { force: true });
        continue;
      }
      let buf = await readFile(path);
      if (buf.length > verdict.upTo) {
        out.cut.push({ file: path, offset: verdict.upTo, reason: 'stray' });
        await truncate(path, verdict.upTo);
        buf = buf.subarray(0, verdict.upTo);
      }
      const acked = await readAcks(ackPath(path));
      const seg: Segment = { seq, path, bytes: 0, records: 0, settled: 0, sealed: true };
      this.segments.set(seq, seg);
      const found: RecoveredRecord[] = [];
      let offset = 0;
      for (;;) {
        const r = decodeRecord(buf, offset);
        if (!r.ok) {
          if (r.reason !== 'end') {
            out.cut.push({ file: path, offset, reason: r.reason });
            await truncate(path, offset);
          }
          break;
        }
        const position = positionOf(seq, offset);
        const settled = acked.has(offset);
        let item: RecoveredRecord | 'unreadable' | null = null;
        if (r.kind === RecordKind.checkpoint) {
          const head = decodeCheckpointHead(r.payload);
          if (!head) item = 'unreadable';
          else {
            if (position > out.checkpointPosition) {
              out.checkpointPosition = position;
              out.checkpoint = head;
            }
            if (!settled) item = { kind: 'checkpoint', receipt: this.receiptAt(position), head };
          }
        } else if (r.kind === RecordKind.request) {
          const request = decodeRequest(r.payload);
          if (!request) item = 'unreadable';
          else if (!settled) {
            item = { kind: 'request', receipt: this.receiptAt(position), receivedAt: request.receivedAt, aggregateAllowed: request.aggregateAllowed, countedBefore: request.countedBefore };
            const key = request.digest.toString('base64');
            this.digests.set(position, key);
            this.resends.spooled(key);
          }
        } else if (r.kind === RecordKind.run) {
          let run: unknown;
          try {
            run = JSON.parse(r.payload.toString('utf8')) as unknown;
          } catch {
            run = undefined;
          }
          if (run === undefined) item = 'unreadable';
          else if (!settled) item = { kind: 'run', receipt: this.receiptAt(position), run };
        } else if (r.kind < LEGACY_ROWS_KINDS && TABLE_KEYS[r.kind]) {
          let rows: unknown = null;
          try {
            rows = JSON.parse(r.payload.toString('utf8')) as unknown;
          } catch {
            rows = null;
          }
          if (!Array.isArray(rows)) item = 'unreadable';
          else if (!settled) item = { kind: 'rows', receipt: this.receiptAt(position), table: TABLE_KEYS[r.kind]!, rows };
        } else {
          item = 'unreadable';
        }
        if (item === 'unreadable') {
          out.cut.push({ file: path, offset, reason: 'corrupt' });
          await truncate(path, offset);
          break;
        }
        seg.records++;
        if (settled) seg.settled++;
        else if (item) found.push(item);
        offset = r.next;
      }
      seg.bytes = offset;
      this.totalBytes += offset;
      if (seg.settled === seg.records) {
        await this.remove(seg);
        continue;
      }
      for (const f of found) out.records.push(f);
    }
    // Before this process creates a segment: what it read is all a later start may read of the others'.
    const read: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const seg of this.segments.values()) read[basename(seg.path)] = seg.bytes;
    // A disk still full at start: wait for room, as a running process does (requests get 503 meanwhile).
    for (;;) {
      try {
        await writeFence(dir, { epoch: this.epoch, segments: read });
        break;
      } catch (err) {
        if (!diskFull(err)) throw err;
        if (this.lostAlready || !(await this.stillOwner())) throw new SpoolLostError(dir, `a later start took epoch ${this.epoch + 1} while this one waited for room`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    if (!(await this.stillOwner())) throw new SpoolLostError(dir, `a later start took epoch ${this.epoch + 1} while this one was recovering`);
    return out;
  }

  private receiptAt(position: number): Receipt {
    return new Receipt(position, this);
  }

  /**
   * Append a request as received, once it is on disk (fdatasync); or, when the same body is in the
   * spool or was delivered within spool.resendWindowSeconds, nothing: it is a resend.
   */
  appendRequest(r: SpooledRequest, now = Date.now()): Promise<Appended> {
    const key = r.digest.toString('base64');
    if (this.resends.has(key, now)) return Promise.resolve({ resend: true });
    const earlier = this.appending.get(key);
    // The same body being appended right now: a resend if that append succeeds, else try again.
    if (earlier) return earlier.then(() => ({ resend: true }) as const, () => this.appendRequest(r, now));
    const p = this.enqueue(encodeRecord(RecordKind.request, encodeRequest(r)), key).then((receipt) => ({ receipt }));
    this.appending.set(key, p);
    const done = () => this.appending.delete(key);
    p.then(done, done);
    return p;
  }

  /** Append a checkpoint (its head and the rows made with it), once it is on disk. */
  appendCheckpoint(head: CheckpointHead, rows: CheckpointRows): Promise<Receipt> {
    return this.enqueue(encodeRecord(RecordKind.checkpoint, encodeCheckpoint(head, rows)), null);
  }

  /** Append the start of a run, once it is on disk. */
  appendRun(run: unknown): Promise<Receipt> {
    return this.enqueue(encodeRecord(RecordKind.run, [Buffer.from(JSON.stringify(run))]), null);
  }

  /** A request record read back from its segment (parked, or left by an earlier run). */
  async readRequest(receipt: Receipt): Promise<SpooledRequest | null> {
    const r = await this.readRecord(receipt.position);
    return r && r.kind === RecordKind.request ? decodeRequest(Buffer.from(r.payload)) : null;
  }

  /** The rows of a checkpoint record read back from its segment. */
  async readCheckpointRows(receipt: Receipt): Promise<CheckpointRows | null> {
    const r = await this.readRecord(receipt.position);
    return r && r.kind === RecordKind.checkpoint ? decodeCheckpointRows(r.payload) : null;
  }

  private async readRecord(position: number): Promise<{ kind: number; payload: Buffer } | null> {
    const seg = this.segments.get(segmentOf(position));
    return seg ? readAt(seg.path, position) : null;
  }

  private enqueue(parts: Buffer[], digest: string | null): Promise<Receipt> {
    if (this.closed) return Promise.reject(this.lostAlready ? new SpoolLostError(this.o.directory) : new Error('spool is closed'));
    let bytes = 0;
    for (const p of parts) bytes += p.length;
    this.totalBytes += bytes;
    return new Promise((resolve, reject) => {
      this.queue.push({ parts, bytes, resolve, reject, digest });
      this.flushing ??= this.flush().finally(() => (this.flushing = null));
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      let total = 0;
      for (const w of batch) total += w.bytes;
      let seg: Segment | null = null;
      try {
        seg = await this.segmentForWrite();
        const parts = batch.length === 1 ? batch[0]!.parts : batch.flatMap((w) => w.parts);
        const t0 = performance.now();
        await writeAll(this.handle!, parts, total);
        await this.handle!.datasync();
        this.hooks.fsyncSeconds((performance.now() - t0) / 1000);
        if (!(await this.stillOwner())) {
          const lost = new SpoolLostError(this.o.directory, `a later start took epoch ${this.epoch + 1}`);
          this.fail(lost);
          throw lost;
        }
      } catch (err) {
        // Nothing of this batch was taken: the segment goes back to its last whole record first.
        // Not once the spool is lost: the new owner may have read these records already (and will
        // answer their resends as such); its fence keeps the next start from what it did not read.
        this.totalBytes -= total;
        if (seg && !this.lostAlready) await this.cutBack(seg);
        for (const w of batch) w.reject(err);
        continue;
      }
      let offset = seg.bytes;
      seg.bytes += total;
      seg.records += batch.length;
      for (const w of batch) {
        const position = positionOf(seg.seq, offset);
        const receipt = new Receipt(position, this);
        if (w.digest !== null) {
          this.digests.set(position, w.digest);
          this.resends.spooled(w.digest);
        }
        w.resolve(receipt);
        offset += w.bytes;
      }
      if (seg.bytes >= this.o.segmentBytes) await this.seal();
    }
  }

  /**
   * After a failed write: cut the segment back to its last whole record, so that the next append
   * lands where the records before it say. If even that fails, seal the segment (replay cuts the
   * torn tail) and go on in a new one.
   */
  private async cutBack(seg: Segment): Promise<void> {
    if (this.active !== seg || !this.handle) return;
    try {
      await this.handle.truncate(seg.bytes);
    } catch {
      await this.seal();
    }
  }

  private async segmentForWrite(): Promise<Segment> {
    if (this.active && this.handle) return this.active;
    for (;;) {
      const seq = this.nextSeq++;
      const path = join(this.o.directory, segmentName(seq, this.epoch));
      try {
        // A new file only: a segment another process left (or writes) is never appended to.
        this.handle = await (this.hooks.createSegment ?? createSegment)(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      // Its name must outlive a power loss as its records do.
      await syncDirectory(this.o.directory).catch(async (err: unknown) => {
        await this.handle?.close().catch(() => undefined);
        this.handle = null;
        await rm(path, { force: true });
        throw err;
      });
      const seg: Segment = { seq, path, bytes: 0, records: 0, settled: 0, sealed: false };
      this.active = seg;
      this.segments.set(seq, seg);
      return seg;
    }
  }

  private async seal(): Promise<void> {
    const seg = this.active;
    const h = this.handle;
    this.active = null;
    this.handle = null;
    if (h) await h.close().catch(() => undefined);
    if (seg) {
      seg.sealed = true;
      if (seg.settled === seg.records) this.noteSettled({ remove: seg });
    }
  }

  /** A receipt settled: its record leaves the spool (and its segment, when it was the last one). */
  settled(receipt: Receipt): void {
    const position = receipt.position;
    const key = this.digests.get(position);
    let digest: string | null = null;
    if (key !== undefined) {
      this.digests.delete(position);
      digest = this.resends.delivered(key, Date.now());
    }
    const seg = this.segments.get(segmentOf(position));
    if (!seg) return;
    seg.settled++;
    this.noteSettled({ seg, offset: offsetOf(position), digest });
    if (seg.sealed && seg.settled === seg.records) this.noteSettled({ remove: seg });
  }

  /**
   * Acknowledgements and segment removals reach the disk in the order records settled, and none
   * after one that could not be written (a full disk): it is tried again first. Receipts settle in
   * the order a replay needs (the pieces of a CRI line before the record that finished it, the
   * records a checkpoint gave up a line of before that checkpoint), so a crash at any point leaves
   * an order-closed set of acknowledgements: a replay may make rows again, never have half a line.
   */
  private noteSettled(entry: SettleEntry): void {
    this.settleLog.push(entry);
    if (this.settleLog.length === 1 && !this.settleRetry) setImmediate(() => this.chore(() => this.writeSettled()));
  }

  private chore(task: () => Promise<void>): void {
    this.chores = this.chores.then(task).catch(() => undefined);
  }

  private async writeSettled(): Promise<void> {
    const log = this.settleLog;
    while (log.length > 0 && !this.lostAlready) {
      const first = log[0]!;
      if ('remove' in first) {
        await this.remove(first.remove);
        log.shift();
        continue;
      }
      // The acknowledgements of one segment that follow one another: one append, not synced (a
      // process killed after it returns keeps it; what a crash of the machine loses is the newest).
      let n = 0;
      let text = '\n';
      let digests = '';
      for (; n < log.length; n++) {
        const e = log[n]!;
        if ('remove' in e || e.seg !== first.seg) break;
        text += ackLine(e.offset);
        if (e.digest) digests += e.digest;
      }
      try {
        // The digests first: a body resent after the next start must still be recognised once its
        // record is gone. A line a failed append cut short ends at the newline the next starts with.
        if (digests) await this.recordDigests(`\n${digests}`);
        if (this.segments.has(first.seg.seq)) await appendFile(ackPath(first.seg.path), text, { mode: 0o600 });
      } catch {
        this.settleRetry = setTimeout(() => {
          this.settleRetry = null;
          this.chore(() => this.writeSettled());
        }, 1000);
        this.settleRetry.unref();
        return;
      }
      log.splice(0, n);
    }
  }

  /**
   * A full disk holds the acknowledgements back with the digests (neither can be written; both go
   * once there is room). Any other failure of the resend log (it is a directory, it is not ours)
   * would hold every acknowledgement back for good and fill the spool: it is reported, and the
   * records go, at the cost of a duplicate should Fluent Bit resend one of those bodies after a restart.
   */
  private async recordDigests(lines: string): Promise<void> {
    try {
      await this.resends.record(lines);
    } catch (err) {
      if (diskFull(err)) throw err;
      this.hooks.resendLogFailed?.(err);
    }
  }

  private async remove(seg: Segment): Promise<void> {
    if (this.lostAlready) return;
    if (seg === this.active || !this.segments.delete(seg.seq)) return;
    this.totalBytes -= seg.bytes;
    await rm(seg.path, { force: true });
    await rm(ackPath(seg.path), { force: true });
  }

  /** Resolves once the appends, acknowledgements and removals under way are done. */
  async idle(): Promise<void> {
    await this.flushing;
    await new Promise((r) => setImmediate(r));
    await this.chores;
  }

  /**
   * Stop: wait for the writes under way, record what settled, close the active segment (deleted
   * when all of it settled), and write `stop` as the marker the next start reads (`cleanStop`).
   */
  async close(stop?: unknown): Promise<void> {
    this.closed = true;
    await this.flushing;
    if (this.lostAlready) {
      // The directory is another process's now: its lock, and the segments it read
      // (this one deleting a segment would pull records from under its replay). Only let go of the file.
      await this.handle?.close().catch(() => undefined);
      this.handle = null;
      this.active = null;
      this.unlock = null;
      return;
    }
    // Acknowledgements noted this tick, then every write and removal still under way; what cannot
    // be written now is not acknowledged (the next start makes those rows again).
    if (this.active) await this.seal();
    if (this.settleRetry) clearTimeout(this.settleRetry);
    this.settleRetry = null;
    await new Promise((r) => setImmediate(r));
    await this.chores;
    this.chore(() => this.writeSettled());
    await this.chores;
    await this.resends.settle();
    if (stop !== undefined) {
      const tmp = join(this.o.directory, `${STOPPED}.tmp`);
      await writeFile(tmp, JSON.stringify(stop), { mode: 0o600 });
      await rename(tmp, join(this.o.directory, STOPPED));
    }
    await this.unlock?.().catch(() => undefined);
    this.unlock = null;
  }
}

export { markBefore };
