/**
 * Epochs and fences: which process owns the spool, and what a later start may read of what the
 * others wrote.
 *
 * The lock (spool.lock) keeps a second process from starting while the first lives, but a process
 * frozen past the lock's stale time (SIGSTOP, a paused VM, a starved cgroup) loses the directory to
 * the next start without knowing it. When it resumes it may still finish the group commit it was
 * in: append to its segment, or create a new one, after the next owner read the directory. Those
 * bytes must never be taken for records anyone answered for (duplicate rows, aggregates counted
 * twice, pieces of a CRI line joined twice), and it must find out before it answers.
 *
 * So each start takes an epoch: the next number in `epochs/`, created with an exclusive mkdir, so
 * no two starts share one. A process owns the spool while `epochs/<its epoch + 1>` does not exist:
 * it checks that after every flush, before it answers. Segment names carry the epoch that created
 * them. Before a start creates any segment it writes its fence, `epochs/<epoch>/fence.json`: the
 * length of every segment it read. The next start judges each segment by the latest fence: one of
 * the fence's own epoch is kept whole; one it listed is cut back to the length it read; any other
 * was written by a process after it lost the spool, and is deleted unread. A process that resumes
 * late and writes its own fence writes an older epoch's, which no one reads.
 */
import { statSync } from 'node:fs';
import { open, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory } from './sync-directory.js';

const EPOCHS = 'epochs';
const FENCE = 'fence.json';
/** Epoch directories kept: a process frozen across this many starts would not see it lost the spool. */
const EPOCHS_KEPT = 1000;

/** A segment file's name: its sequence number, and the epoch that created it (none in a spool an earlier version wrote). */
const SEGMENT_RE = /^segment-(\d{16})(?:-e(\d{1,15}))?\.wal$/;

export interface SegmentName {
  name: string;
  seq: number;
  epoch: number | null;
}

export function segmentName(seq: number, epoch: number): string {
  return `segment-${String(seq).padStart(16, '0')}-e${epoch}.wal`;
}

/** The segment files among a directory's names, in the order they were created. */
export function parseSegmentNames(names: readonly string[]): SegmentName[] {
  const out: SegmentName[] = [];
  for (const name of names) {
    const m = SEGMENT_RE.exec(name);
    if (m) out.push({ name, seq: Number(m[1]), epoch: m[2] === undefined ? null : Number(m[2]) });
  }
  return out.sort((a, b) => a.seq - b.seq || (a.name < b.name ? -1 : 1));
}

export interface Fence {
  /** The epoch that wrote it: every segment that epoch created is kept whole. */
  epoch: number;
  /** Segments that were there when it took the directory, and the bytes of whole records it read in each. */
  segments: Record<string, number>;
}

/** What a start does with one segment file. */
export type Verdict = { keep: true; upTo: number } | { keep: false };

/** Judge a segment by the latest fence (none: every segment is kept whole). */
export function judge(fence: Fence | null, s: SegmentName): Verdict {
  if (!fence) return { keep: true, upTo: Number.POSITIVE_INFINITY };
  if (s.epoch === fence.epoch) return { keep: true, upTo: Number.POSITIVE_INFINITY };
  const listed = fence.segments[s.name];
  return listed === undefined ? { keep: false } : { keep: true, upTo: listed };
}

async function epochsIn(dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(join(dir, EPOCHS));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: number[] = [];
  for (const n of names) if (/^\d{1,15}$/.test(n)) out.push(Number(n));
  return out.sort((a, b) => a - b);
}

/** Take the next epoch: no other start gets the same one. */
export async function takeEpoch(dir: string): Promise<number> {
  await mkdir(join(dir, EPOCHS), { recursive: true, mode: 0o700 });
  const taken = await epochsIn(dir);
  let next = (taken.at(-1) ?? 0) + 1;
  for (;;) {
    try {
      await mkdir(join(dir, EPOCHS, String(next)), { mode: 0o700 });
      await syncDirectory(join(dir, EPOCHS));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      next++;
      continue;
    }
    for (const old of taken.slice(0, Math.max(0, taken.length + 1 - EPOCHS_KEPT))) await rm(join(dir, EPOCHS, String(old)), { recursive: true, force: true });
    return next;
  }
}

/** Whether a later start has taken the spool from `epoch`. */
export async function superseded(dir: string, epoch: number): Promise<boolean> {
  try {
    await stat(join(dir, EPOCHS, String(epoch + 1)));
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/** superseded, for code that cannot wait (at exit): an error reads as superseded. */
export function supersededSync(dir: string, epoch: number): boolean {
  try {
    statSync(join(dir, EPOCHS, String(epoch + 1)));
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

/**
 * The latest fence before `epoch`: null when there is none (a new spool, or one an earlier version
 * wrote); an error value when the latest one cannot be read (then nothing may be deleted).
 * An epoch without a fence ended before it created a segment, and is passed over.
 */
export async function latestFence(dir: string, epoch: number): Promise<Fence | null | { unreadable: string; file: string }> {
  const before = (await epochsIn(dir)).filter((e) => e < epoch).reverse();
  for (const e of before) {
    const file = join(dir, EPOCHS, String(e), FENCE);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return { unreadable: (err as Error).message, file };
    }
    try {
      const v = JSON.parse(text) as { epoch?: unknown; segments?: unknown } | null;
      if (typeof v !== 'object' || v === null || v.epoch !== e || typeof v.segments !== 'object' || v.segments === null) throw new Error('not a fence of this epoch');
      const segments: Record<string, number> = Object.create(null) as Record<string, number>;
      for (const [name, n] of Object.entries(v.segments)) {
        if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new Error(`bad length for ${name}`);
        segments[name] = n;
      }
      return { epoch: e, segments };
    } catch (err) {
      return { unreadable: (err as Error).message, file };
    }
  }
  return null;
}

/** Write this epoch's fence, durably, before any segment of this epoch is created. */
export async function writeFence(dir: string, fence: Fence): Promise<void> {
  const epochDir = join(dir, EPOCHS, String(fence.epoch));
  const tmp = join(epochDir, `${FENCE}.tmp`);
  const h = await open(tmp, 'w', 0o600);
  try {
    await h.writeFile(JSON.stringify(fence));
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, join(epochDir, FENCE));
  await syncDirectory(epochDir);
}
