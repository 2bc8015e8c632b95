/**
 * The fence: which segment files, and how much of each, the spool's current owner found when it took
 * the directory. A process frozen past the lock's stale time (SIGSTOP, a paused VM, a starved
 * cgroup) may, when it resumes, still finish the group commit it was in: append to its segment, or
 * create a new one, after the next owner read the directory. It then finds that it lost the spool
 * and answers none of those requests; but the bytes are on disk, and a later start would take them
 * for records it answered for: duplicate rows, aggregates counted twice, pieces of a CRI line
 * joined twice. Segment names carry the token of the process that created them, and each owner
 * writes the fence (atomically, fsynced) before it creates any segment of its own, so at the next
 * start every segment is either the fence owner's own, or one it listed (cut back to the length it
 * read), or stray (deleted unread).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const FENCE = 'spool.fence';

/** A segment file's name: its sequence number, and the owner token of the process that created it (none in a spool an earlier version wrote). */
const SEGMENT_RE = /^segment-(\d{16})(?:-([0-9a-f]{24}))?\.wal$/;

export interface SegmentName {
  name: string;
  seq: number;
  owner: string | null;
}

export function segmentName(seq: number, owner: string): string {
  return `segment-${String(seq).padStart(16, '0')}-${owner}.wal`;
}

/** The segment files among a directory's names, in the order they were created. */
export function parseSegmentNames(names: readonly string[]): SegmentName[] {
  const out: SegmentName[] = [];
  for (const name of names) {
    const m = SEGMENT_RE.exec(name);
    if (m) out.push({ name, seq: Number(m[1]), owner: m[2] ?? null });
  }
  return out.sort((a, b) => a.seq - b.seq || (a.name < b.name ? -1 : 1));
}

export interface Fence {
  /** The owner that wrote it: every segment it created is its to keep, whatever its length. */
  owner: string;
  /** Segments that were there when it took the directory, and the bytes of whole records it read in each. */
  segments: Record<string, number>;
}

/** What a start does with one segment file. */
export type Verdict = { keep: true; upTo: number } | { keep: false };

/** Judge a segment by the fence the previous owner wrote (none: every segment is kept whole). */
export function judge(fence: Fence | null, s: SegmentName): Verdict {
  if (!fence) return { keep: true, upTo: Number.POSITIVE_INFINITY };
  if (s.owner !== null && s.owner === fence.owner) return { keep: true, upTo: Number.POSITIVE_INFINITY };
  const listed = fence.segments[s.name];
  return listed === undefined ? { keep: false } : { keep: true, upTo: listed };
}

/** The fence in `dir`: null when there is none; an error value when it cannot be read (nothing is deleted then). */
export async function readFence(dir: string): Promise<Fence | null | { unreadable: string }> {
  let text: string;
  try {
    text = await readFile(join(dir, FENCE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { unreadable: (err as Error).message };
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null) throw new Error('not an object');
    const { owner, segments } = v as { owner?: unknown; segments?: unknown };
    if (typeof owner !== 'string' || typeof segments !== 'object' || segments === null) throw new Error('no owner or segments');
    const out: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const [name, n] of Object.entries(segments)) {
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new Error(`bad length for ${name}`);
      out[name] = n;
    }
    return { owner, segments: out };
  } catch (err) {
    return { unreadable: (err as Error).message };
  }
}

/** Write the fence, durably, replacing the previous one in one step. */
export async function writeFence(dir: string, fence: Fence): Promise<void> {
  const tmp = join(dir, `${FENCE}.${randomBytes(6).toString('hex')}`);
  const h = await open(tmp, 'wx', 0o600);
  try {
    await h.writeFile(JSON.stringify(fence));
    await h.sync();
  } finally {
    await h.close();
  }
  try {
    await rename(tmp, join(dir, FENCE));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // The rename itself is durable only once the directory is.
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
