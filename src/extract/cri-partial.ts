/**
 * containerd splits a log line longer than 16 KiB into pieces tagged `P` (partial) and a last
 * piece tagged `F` (full). Fluent Bit's `Parser cri` hands the pieces over one by one (tag in
 * `logtag`), so they are joined here, per stream, before the line is parsed. Bounded in bytes and
 * age: a line that grows too long or never gets its final piece is handed back as a failure.
 * Each unfinished line remembers whose pieces it holds (PieceSource), and gives them back when it
 * is finished, one way or the other.
 */
import type { DecidedLine, PieceHold, PieceSource } from './types.js';

export interface PartialFailure {
  key: string;
  reason: 'partial_too_large' | 'partial_incomplete' | 'partial_evicted';
  text: string;
  pieces: number;
  line: DecidedLine;
}

interface Pending {
  parts: string[];
  bytes: number;
  firstAt: number;
  overflowed: boolean;
  sources: PieceSource[];
  holds: PieceHold[];
}

const NOTHING_HELD: DecidedLine = { sources: [], holds: [] };

/** What a decided line held; the holds are the decider's to release. */
function decided(p: Pending): DecidedLine {
  const line = { sources: p.sources, holds: p.holds };
  p.sources = [];
  p.holds = [];
  return line;
}

export interface JoinerLimits {
  /** Longest line. */
  maxBytes: number;
  maxAgeMs: number;
  /** Unfinished lines held at once, over all streams. */
  maxLines: number;
  /** Bytes held at once over all streams (pieces and stream keys). */
  maxTotalBytes: number;
}

export class CriPartialJoiner {
  /** In insertion order, so the first entry is the oldest line. */
  private readonly pending = new Map<string, Pending>();
  private totalBytes = 0;
  /** Lines given up to make room for newer ones since the start. */
  evicted = 0;

  constructor(private readonly limits: JoinerLimits) {}

  get size(): number {
    return this.pending.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** When the oldest pending line got its first piece (lines are kept in the order they began). */
  get oldestAt(): number | null {
    for (const p of this.pending.values()) return p.firstAt;
    return null;
  }

  /**
   * Add a `P` piece. Returns the lines given up: this one when it just went over the size bound,
   * the oldest others when holding it would go over the bounds over all streams.
   */
  addPartial(key: string, piece: string, now: number, source?: PieceSource): PartialFailure[] {
    let p = this.pending.get(key);
    const failures: PartialFailure[] = [];
    if (!p) {
      while (this.pending.size > 0 && (this.pending.size >= this.limits.maxLines || this.totalBytes + key.length + piece.length > this.limits.maxTotalBytes)) {
        const oldest = this.pending.keys().next().value as string;
        const f = this.remove(oldest, 'partial_evicted');
        this.evicted++;
        if (f) failures.push(f);
      }
      p = { parts: [], bytes: 0, firstAt: now, overflowed: false, sources: [], holds: [] };
      this.pending.set(key, p);
      this.totalBytes += key.length;
    }
    // Pieces of a line already reported too large are dropped: nothing to keep them for.
    if (p.overflowed) return failures;
    if (source && !p.sources.includes(source)) {
      p.sources.push(source);
      p.holds.push(source.hold());
    }
    p.parts.push(piece);
    p.bytes += piece.length;
    this.totalBytes += piece.length;
    if (p.bytes > this.limits.maxBytes) {
      // Keep the key so that later pieces of the same line are discarded until its `F` arrives.
      p.overflowed = true;
      const text = p.parts.join('');
      const pieces = p.parts.length;
      p.parts = [];
      this.totalBytes -= p.bytes;
      p.bytes = 0;
      failures.push({ key, reason: 'partial_too_large', text, pieces, line: decided(p) });
    }
    return failures;
  }

  /** Forget a line; what it held is handed back unless it was already reported. */
  private remove(key: string, reason: PartialFailure['reason']): PartialFailure | null {
    const p = this.pending.get(key)!;
    this.pending.delete(key);
    this.totalBytes -= p.bytes + key.length;
    const line = decided(p);
    if (p.overflowed) {
      // Already reported: what it held since is let go with nothing made of it.
      for (const h of line.holds) h.release();
      return null;
    }
    return { key, reason, text: p.parts.join(''), pieces: p.parts.length, line };
  }

  /**
   * The `F` piece: returns the whole line (null when the line had overflowed, already reported)
   * and whose pieces it used. With nothing pending, the piece is the whole line.
   */
  complete(key: string, last: string): { text: string | null; line: DecidedLine } {
    const p = this.pending.get(key);
    if (!p) return { text: last, line: NOTHING_HELD };
    this.pending.delete(key);
    this.totalBytes -= p.bytes + key.length;
    const line = decided(p);
    if (p.overflowed) return { text: null, line };
    p.parts.push(last);
    return { text: p.parts.join(''), line };
  }

  /** Forget the line of `key` as it stands, holding nothing (replay: it was decided at a checkpoint). */
  forget(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    this.totalBytes -= p.bytes + key.length;
    for (const h of p.holds) h.release();
  }

  /** The keys of the lines pending now. */
  keys(): string[] {
    return [...this.pending.keys()];
  }

  /** Lines whose final piece has not come within maxAgeMs. */
  expire(now: number): PartialFailure[] {
    const out: PartialFailure[] = [];
    for (const [key, p] of this.pending) {
      if (now - p.firstAt < this.limits.maxAgeMs) continue;
      const f = this.remove(key, 'partial_incomplete');
      if (f) out.push(f);
    }
    return out;
  }

  /** Everything still pending, for shutdown: nothing is dropped without a trace. */
  drain(): PartialFailure[] {
    return this.expire(Number.POSITIVE_INFINITY);
  }
}
