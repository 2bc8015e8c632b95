import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * Where one record's line lay in the file Fluent Bit's tail input read it from, as its `Path_Key
 * log_file` and `Offset_Key log_offset` say (Fluent Bit 4.2.8, plugins/in_tail/tail_file.c):
 * - log_file is the name the file had when this Fluent Bit process opened it; a file renamed by
 *   rotation keeps reporting that name;
 * - log_offset is the offset of the line's first byte, counted from where this process began
 *   reading the file: from its head for a file read from the start, from the offset kept in the
 *   DB for a file resumed after a restart. Each process (and each file it opens) starts at 0.
 * The line occupies its UTF-8 bytes and the newline after it.
 */
export interface LinePosition {
  file: string;
  offset: number;
  /** The line as received under `log`, without its newline. */
  line: string | Uint8Array;
}

/** The position of a decoded Fluent Bit record, or null when it carries none (stdout path, another input). */
export function linePosition(record: Record<string, unknown>): LinePosition | null {
  const file = record.log_file;
  const offset = record.log_offset;
  const line = record.log;
  if (typeof file !== 'string' || file === '') return null;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return null;
  if (typeof line !== 'string' && !(line instanceof Uint8Array)) return null;
  return { file, offset, line };
}

export const upstreamGapsOptionsSchema = z
  .object({
    graceMs: z
      .number()
      .int()
      .min(1000)
      .default(300_000)
      .describe('How long bytes missing between delivered ranges may wait for a retried chunk (Fluent Bit retries within scheduler.cap) before they are called missing; every refusal hubble-adx answers restarts the wait.'),
    maxFiles: z.number().int().min(1).default(64).describe('Files followed at once; the one seen least recently is given up first.'),
    maxSequencesPerFile: z.number().int().min(1).default(4).describe('Reads of one file name kept at once (a rotation reusing the name, a Fluent Bit restart).'),
    maxHolesPerSequence: z.number().int().min(1).default(256).describe('Stretches still awaited per read of a file; past it the lowest is given up.'),
    maxUnplacedPerFile: z.number().int().min(1).default(64).describe('Ranges that fit no read of their file yet (a read whose head has not arrived), per file.'),
    maxStartsPerFile: z.number().int().min(1).default(256).describe('Recent chunk starts remembered per file to know a resent chunk.'),
    maxWrittenOffPerSequence: z.number().int().min(0).default(16).describe('Stretches called missing remembered per read, to count them if they arrive after all.'),
    maxReportedRanges: z.number().int().min(1).default(16).describe('Missing byte ranges listed per file in one window.'),
  })
  .strict();

export type UpstreamGapsOptions = z.infer<typeof upstreamGapsOptionsSchema>;

/** A stretch of a file not yet delivered: [start, end) and when it began waiting (ms). */
type Hole = [start: number, end: number, since: number];

/**
 * One read of a file by one Fluent Bit process (offsets from 0). Bytes below `start` are not
 * followed (the file came back after it was given up), [start, end) minus the holes has arrived.
 */
interface SequenceState {
  head: string | null;
  start: number;
  end: number;
  holes: Hole[];
  writtenOff: [start: number, end: number][];
}

interface FileState {
  file: string;
  lastSeen: number;
  sequences: SequenceState[];
  /** Recent chunk starts (offset, fingerprint of its first line, when): a resent chunk repeats one. */
  starts: [offset: number, fingerprint: string, at: number][];
  /** Ranges that fit no sequence yet: a sequence whose head has not arrived, or a duplicate. */
  unplaced: [start: number, end: number, at: number][];
}

interface WindowCounts {
  receivedBytes: number;
  duplicateBytes: number;
  unplacedBytes: number;
  lateBytes: number;
  givenUpBytes: number;
  sequencesStarted: number;
  filesGivenUp: number;
}

/** The whole state of a tracker, plain JSON: persisted at a checkpoint and restored after a crash. */
export interface UpstreamState {
  version: 1;
  lastRefusal: number;
  files: FileState[];
  /** Names of files given up to stay within maxFiles: if one comes back, its head is not expected. */
  forgotten: string[];
  window: WindowCounts;
}

export interface MissingInFile {
  file: string;
  bytes: number;
  /** Up to maxReportedRanges [start, end) offsets, lowest first, in the read they belong to. */
  ranges: [number, number][];
}

/** What one coverage window learned about the bytes of the export files upstream of hubble-adx. */
export interface UpstreamWindowReport {
  /** Bytes that can no longer arrive, called missing in this window: sum of `missing`. */
  missingBytes: number;
  missing: MissingInFile[];
  /** Bytes of lines that arrived and took their place. */
  receivedBytes: number;
  /** Bytes that arrived again: a chunk Fluent Bit sent twice, a head read twice. */
  duplicateBytes: number;
  /** Bytes that arrived but fit no read of their file within the grace time. */
  unplacedBytes: number;
  /** Bytes called missing in an earlier window that arrived after all. */
  lateBytes: number;
  /** Bytes still awaited, not yet missing (within the grace time). */
  pendingBytes: number;
  /** Bytes awaited when the tracker dropped them to stay within its bounds: neither seen nor called missing. */
  givenUpBytes: number;
  /** Reads that began at offset 0 again: a new file under a name seen before, or a Fluent Bit restart. */
  sequencesStarted: number;
  filesGivenUp: number;
  filesTracked: number;
}

const emptyCounts = (): WindowCounts => ({ receivedBytes: 0, duplicateBytes: 0, unplacedBytes: 0, lateBytes: 0, givenUpBytes: 0, sequencesStarted: 0, filesGivenUp: 0 });

const fingerprint = (line: string | Uint8Array) => createHash('sha256').update(line).digest('base64url').slice(0, 12);
const byteLength = (line: string | Uint8Array) => (typeof line === 'string' ? Buffer.byteLength(line, 'utf8') : line.byteLength);

/** A contiguous run of lines of one file within one request. */
interface Run {
  file: string;
  start: number;
  end: number;
  fingerprint: string;
}

/**
 * Checks that the byte ranges Fluent Bit delivered of each export file follow on from one
 * another, and says per window which bytes can no longer arrive.
 *
 * Ranges may arrive out of order (two http workers, retried chunks): a stretch between two
 * delivered ranges waits graceMs (restarted by every refusal) before it is called missing. A file
 * name is read again from offset 0 when the agent rotates to a new file of that name or Fluent Bit
 * restarts; each such read is a sequence of its own, told apart by the fingerprint of its first
 * line, and a range goes to the read it fits (nearest to its end or inside one of its holes).
 * A chunk sent twice repeats a start already seen and counts as a duplicate.
 *
 * Pure: no I/O, no timers; `now` is passed in (ms). Bounded by its options; what it gives up to
 * stay within them is counted, never called missing.
 */
export class UpstreamGaps {
  private readonly files = new Map<string, FileState>();
  private forgotten: string[] = [];
  private lastRefusal = 0;
  private counts: WindowCounts = emptyCounts();

  constructor(private readonly o: UpstreamGapsOptions) {}

  /** A tracker from a snapshot; the wait of every hole restarts at `now` (Fluent Bit kept retrying while hubble-adx was down). */
  static restore(o: UpstreamGapsOptions, state: unknown, now: number): { ok: true; tracker: UpstreamGaps } | { ok: false; reason: string } {
    const parsed = stateSchema.safeParse(state);
    if (!parsed.success) return { ok: false, reason: `not an upstream-gaps snapshot: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim() };
    const t = new UpstreamGaps(o);
    const s = structuredClone(parsed.data) as UpstreamState;
    for (const f of s.files) t.files.set(f.file, f);
    t.forgotten = s.forgotten;
    t.counts = s.window;
    t.lastRefusal = Math.max(s.lastRefusal, now);
    return { ok: true, tracker: t };
  }

  snapshot(): UpstreamState {
    return structuredClone({ version: 1, lastRefusal: this.lastRefusal, files: [...this.files.values()], forgotten: this.forgotten, window: this.counts });
  }

  /** hubble-adx refused a request at `now` (Fluent Bit will send it again): holes wait graceMs more. */
  refused(now: number): void {
    this.lastRefusal = Math.max(this.lastRefusal, now);
  }

  /** The positions of the records of one request, in the order they came. */
  observe(positions: Iterable<LinePosition>, now: number): void {
    let run: Run | null = null;
    for (const p of positions) {
      const bytes = byteLength(p.line) + 1;
      if (run && run.file === p.file && run.end === p.offset) {
        run.end += bytes;
        continue;
      }
      if (run) this.place(run, now);
      run = { file: p.file, start: p.offset, end: p.offset + bytes, fingerprint: fingerprint(p.line) };
    }
    if (run) this.place(run, now);
  }

  /** What is missing now, for the window that closes; the window's counts start again. */
  closeWindow(now: number): UpstreamWindowReport {
    const missing: MissingInFile[] = [];
    let pendingBytes = 0;
    for (const f of this.files.values()) {
      let bytes = 0;
      const ranges: [number, number][] = [];
      for (const q of f.sequences) {
        const due = q.holes.filter((h) => this.isDue(h[2], now));
        if (due.length > 0) {
          q.holes = q.holes.filter((h) => !this.isDue(h[2], now));
          for (const [s, e] of due) {
            bytes += e - s;
            if (ranges.length < this.o.maxReportedRanges) ranges.push([s, e]);
            q.writtenOff.push([s, e]);
          }
          q.writtenOff.sort((a, b) => a[0] - b[0]);
          while (q.writtenOff.length > this.o.maxWrittenOffPerSequence) q.writtenOff.shift();
        }
        for (const [s, e] of q.holes) pendingBytes += e - s;
      }
      const expired = f.unplaced.filter((u) => this.isDue(u[2], now));
      if (expired.length > 0) {
        f.unplaced = f.unplaced.filter((u) => !this.isDue(u[2], now));
        for (const [s, e] of expired) this.counts.unplacedBytes += e - s;
      }
      f.starts = f.starts.filter((st) => !this.isDue(st[2], now - this.o.graceMs));
      if (bytes > 0) missing.push({ file: f.file, bytes, ranges });
    }
    missing.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    const report: UpstreamWindowReport = {
      missingBytes: missing.reduce((n, m) => n + m.bytes, 0),
      missing,
      ...this.counts,
      pendingBytes,
      filesTracked: this.files.size,
    };
    this.counts = emptyCounts();
    return report;
  }

  private isDue(since: number, now: number): boolean {
    return Math.max(since, this.lastRefusal) + this.o.graceMs <= now;
  }

  private place(run: Run, now: number): void {
    const f = this.fileFor(run.file, now);
    f.lastSeen = now;
    if (f.starts.some(([o, fp]) => o === run.start && fp === run.fingerprint) || (run.start === 0 && f.sequences.some((q) => q.head === run.fingerprint))) {
      this.apply(this.coveringSequence(f, run) ?? null, run, now, true);
      return;
    }
    this.remember(f, run, now);
    if (run.start === 0) {
      const headless = f.sequences.findLast((q) => q.head === null && distance(q, run.start, run.end) >= 0);
      if (headless) {
        this.apply(headless, run, now, false);
        return;
      }
      const q = this.startSequence(f, run.fingerprint, 0);
      this.apply(q, run, now, false);
      this.transplant(f, q, now);
      return;
    }
    const target = nearest(f.sequences, run.start, run.end);
    if (target) {
      this.apply(target, run, now, false);
      this.transplant(f, target, now);
      return;
    }
    if (f.sequences.length === 0) {
      // The first range of a file seen past its head: the head is awaited, unless the file was
      // given up before (what arrived of it then is not known any more).
      const q = this.startSequence(f, null, this.forgotten.includes(f.file) ? run.start : 0);
      this.apply(q, run, now, false);
      return;
    }
    f.unplaced.push([run.start, run.end, now]);
    while (f.unplaced.length > this.o.maxUnplacedPerFile) {
      const [s, e] = f.unplaced.shift()!;
      this.counts.unplacedBytes += e - s;
    }
  }

  /** The run's bytes in sequence `q` (null: counted as duplicates): new, filling a hole, late, or again. */
  private apply(q: SequenceState | null, run: Run, now: number, repeated: boolean): void {
    const { start: s, end: e } = run;
    if (q === null) {
      this.counts.duplicateBytes += e - s;
      return;
    }
    if (s === 0 && !repeated) q.head ??= run.fingerprint;
    if (e <= q.start && q.start > 0) {
      // Below where a sequence given up and seen again begins: it grows down.
      if (e < q.start) this.addHole(q, [e, q.start, now]);
      q.start = s;
      this.counts.receivedBytes += e - s;
      return;
    }
    const oldEnd = q.end;
    if (e > oldEnd) {
      if (s > oldEnd) this.addHole(q, [oldEnd, s, now]);
      this.counts.receivedBytes += e - Math.max(s, oldEnd);
      q.end = e;
    }
    if (s < oldEnd) {
      const to = Math.min(e, oldEnd);
      const filled = cut(q.holes, s, to);
      const late = cutPairs(q.writtenOff, s, to);
      this.counts.receivedBytes += filled;
      this.counts.lateBytes += late;
      this.counts.duplicateBytes += to - s - filled - late;
    }
  }

  /** The sequence that already holds the whole run, newest first (for a repeated chunk). */
  private coveringSequence(f: FileState, run: Run): SequenceState | undefined {
    return f.sequences.findLast((q) => q.start <= run.start && run.end <= q.end && !q.holes.some((h) => h[0] < run.end && run.start < h[1]));
  }

  /**
   * A range placed in an older sequence before this one's head arrived: it sits past a hole that
   * ends exactly where this sequence now ends, while that hole still waits. Move it here.
   */
  private transplant(f: FileState, q: SequenceState, now: number): void {
    for (let moved = true; moved; ) {
      moved = false;
      for (const o of f.sequences) {
        if (o === q) continue;
        const i = o.holes.findIndex((h) => h[1] === q.end && !this.isDue(h[2], now));
        if (i < 0) continue;
        const hole = o.holes[i]!;
        const next = o.holes[i + 1];
        const blockEnd = next ? next[0] : o.end;
        if (next) o.holes.splice(i, 2, [hole[0], next[1], Math.min(hole[2], next[2])]);
        else {
          o.holes.splice(i, 1);
          o.end = hole[0];
        }
        q.end = blockEnd;
        moved = true;
      }
    }
    this.offerUnplaced(f, q, now);
  }

  /** Ranges that fit nowhere before may belong to a sequence that just began or grew. */
  private offerUnplaced(f: FileState, q: SequenceState, now: number): void {
    for (let placed = true; placed; ) {
      placed = false;
      for (let i = 0; i < f.unplaced.length; i++) {
        const [s, e] = f.unplaced[i]!;
        if (distance(q, s, e) < 0) continue;
        f.unplaced.splice(i, 1);
        this.apply(q, { file: f.file, start: s, end: e, fingerprint: '' }, now, true);
        placed = true;
        break;
      }
    }
  }

  private startSequence(f: FileState, head: string | null, start: number): SequenceState {
    const q: SequenceState = { head, start, end: start, holes: [], writtenOff: [] };
    f.sequences.push(q);
    this.counts.sequencesStarted++;
    while (f.sequences.length > this.o.maxSequencesPerFile) {
      const old = f.sequences.shift()!;
      for (const [s, e] of old.holes) this.counts.givenUpBytes += e - s;
    }
    return q;
  }

  private addHole(q: SequenceState, hole: Hole): void {
    const i = q.holes.findIndex((h) => h[0] > hole[0]);
    if (i < 0) q.holes.push(hole);
    else q.holes.splice(i, 0, hole);
    while (q.holes.length > this.o.maxHolesPerSequence) {
      const [s, e] = q.holes.shift()!;
      this.counts.givenUpBytes += e - s;
    }
  }

  private remember(f: FileState, run: Run, now: number): void {
    f.starts.push([run.start, run.fingerprint, now]);
    while (f.starts.length > this.o.maxStartsPerFile) f.starts.shift();
  }

  private fileFor(name: string, now: number): FileState {
    let f = this.files.get(name);
    if (f) return f;
    if (this.files.size >= this.o.maxFiles) this.forget();
    f = { file: name, lastSeen: now, sequences: [], starts: [], unplaced: [] };
    this.files.set(name, f);
    return f;
  }

  /** Give up the file seen least recently (one awaiting nothing if there is one). */
  private forget(): void {
    const all = [...this.files.values()];
    const idle = all.filter((f) => f.unplaced.length === 0 && f.sequences.every((q) => q.holes.length === 0));
    const victim = (idle.length > 0 ? idle : all).reduce((a, b) => (b.lastSeen < a.lastSeen ? b : a));
    for (const q of victim.sequences) for (const [s, e] of q.holes) this.counts.givenUpBytes += e - s;
    for (const [s, e] of victim.unplaced) this.counts.unplacedBytes += e - s;
    this.files.delete(victim.file);
    this.counts.filesGivenUp++;
    this.forgotten = [...this.forgotten.filter((n) => n !== victim.file), victim.file].slice(-this.o.maxFiles);
  }
}

/**
 * How far [s, e) lies from where sequence q could take it: 0 when it follows on from q's end or
 * touches an edge of one of q's holes (or of a stretch already called missing); -1 when it
 * overlaps bytes q already has.
 */
function distance(q: SequenceState, s: number, e: number): number {
  if (q.start > 0 && e <= q.start) return q.start - e;
  if (s >= q.end && s >= q.start) return s - q.end;
  for (const [hs, he] of [...q.holes, ...q.writtenOff]) if (hs <= s && e <= he) return Math.min(s - hs, he - e);
  return -1;
}

/** The sequence a range fits nearest (the newest among equals), or undefined when it fits none. */
function nearest(sequences: SequenceState[], s: number, e: number): SequenceState | undefined {
  let best: SequenceState | undefined;
  let bestDistance = Infinity;
  for (const q of sequences) {
    const d = distance(q, s, e);
    if (d >= 0 && d <= bestDistance) {
      best = q;
      bestDistance = d;
    }
  }
  return best;
}

/** Remove [s, e) from sorted holes; the bytes removed. */
function cut(holes: Hole[], s: number, e: number): number {
  let removed = 0;
  for (let i = 0; i < holes.length; i++) {
    const [hs, he, since] = holes[i]!;
    if (he <= s || e <= hs) continue;
    removed += Math.min(he, e) - Math.max(hs, s);
    const parts: Hole[] = [];
    if (hs < s) parts.push([hs, s, since]);
    if (e < he) parts.push([e, he, since]);
    holes.splice(i, 1, ...parts);
    i += parts.length - 1;
  }
  return removed;
}

function cutPairs(pairs: [number, number][], s: number, e: number): number {
  const holes: Hole[] = pairs.map(([a, b]) => [a, b, 0]);
  const removed = cut(holes, s, e);
  pairs.splice(0, pairs.length, ...holes.map(([a, b]): [number, number] => [a, b]));
  return removed;
}

const range = z.tuple([z.number().int().min(0), z.number().int().min(0)]);

/** Holes and written-off stretches sorted, apart, non-empty and inside [start, end). */
function consistent(q: { start: number; end: number; holes: [number, number, number][]; writtenOff: [number, number][] }): boolean {
  const inside = (list: [number, number, ...unknown[]][]) => list.every(([s, e], i) => s < e && q.start <= s && e <= q.end && (i === 0 || list[i - 1]![1] <= s));
  return q.start <= q.end && inside(q.holes) && inside(q.writtenOff);
}

const stateSchema = z.object({
  version: z.literal(1),
  lastRefusal: z.number(),
  files: z.array(
    z.object({
      file: z.string().min(1),
      lastSeen: z.number(),
      sequences: z.array(
        z.object({
          head: z.string().nullable(),
          start: z.number().int().min(0),
          end: z.number().int().min(0),
          holes: z.array(z.tuple([z.number().int().min(0), z.number().int().min(0), z.number()])),
          writtenOff: z.array(range),
        }).refine(consistent, 'holes must be sorted, apart and inside the sequence'),
      ),
      starts: z.array(z.tuple([z.number().int().min(0), z.string(), z.number()])),
      unplaced: z.array(z.tuple([z.number().int().min(0), z.number().int().min(0), z.number()])),
    }),
  ),
  forgotten: z.array(z.string()),
  window: z.object({
    receivedBytes: z.number(),
    duplicateBytes: z.number(),
    unplacedBytes: z.number(),
    lateBytes: z.number(),
    givenUpBytes: z.number(),
    sequencesStarted: z.number(),
    filesGivenUp: z.number(),
  }),
});
