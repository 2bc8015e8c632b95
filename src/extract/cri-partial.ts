/**
 * containerd splits a log line longer than 16 KiB into pieces tagged `P` (partial) and a last
 * piece tagged `F` (full). Fluent Bit's `Parser cri` hands the pieces over one by one (tag in
 * `logtag`), so they are joined here, per stream, before the line is parsed. Bounded in bytes and
 * age: a line that grows too long or never gets its final piece is handed back as a failure.
 * Each unfinished line remembers whose pieces it holds (PieceSource), and gives them back when it
 * is finished, one way or the other.
 */
import type { PieceSource } from './types.js';

export interface PartialFailure {
  key: string;
  reason: 'partial_too_large' | 'partial_incomplete';
  text: string;
  pieces: number;
  sources: PieceSource[];
}

interface Pending {
  parts: string[];
  bytes: number;
  firstAt: number;
  overflowed: boolean;
  sources: PieceSource[];
}

const NO_SOURCES: PieceSource[] = [];

/** The sources of a finished line: each now holds one unfinished line fewer. */
function release(p: Pending): PieceSource[] {
  const s = p.sources;
  for (const src of s) src.pendingLines--;
  p.sources = NO_SOURCES;
  return s;
}

export class CriPartialJoiner {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly maxBytes: number,
    private readonly maxAgeMs: number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Add a `P` piece. Returns a failure when the line just went over the size bound. */
  addPartial(key: string, piece: string, now: number, source?: PieceSource): PartialFailure | null {
    let p = this.pending.get(key);
    if (!p) {
      p = { parts: [], bytes: 0, firstAt: now, overflowed: false, sources: [] };
      this.pending.set(key, p);
    }
    // Pieces of a line already reported too large are dropped: nothing to keep them for.
    if (p.overflowed) return null;
    if (source && !p.sources.includes(source)) {
      p.sources.push(source);
      source.pendingLines++;
    }
    p.parts.push(piece);
    p.bytes += piece.length;
    if (p.bytes > this.maxBytes) {
      // Keep the key so that later pieces of the same line are discarded until its `F` arrives.
      p.overflowed = true;
      const text = p.parts.join('');
      const pieces = p.parts.length;
      p.parts = [];
      return { key, reason: 'partial_too_large', text, pieces, sources: release(p) };
    }
    return null;
  }

  /**
   * The `F` piece: returns the whole line (null when the line had overflowed, already reported)
   * and whose pieces it used. With nothing pending, the piece is the whole line.
   */
  complete(key: string, last: string): { text: string | null; sources: PieceSource[] } {
    const p = this.pending.get(key);
    if (!p) return { text: last, sources: NO_SOURCES };
    this.pending.delete(key);
    const sources = release(p);
    if (p.overflowed) return { text: null, sources };
    p.parts.push(last);
    return { text: p.parts.join(''), sources };
  }

  /** Lines whose final piece has not come within maxAgeMs. */
  expire(now: number): PartialFailure[] {
    const out: PartialFailure[] = [];
    for (const [key, p] of this.pending) {
      if (now - p.firstAt < this.maxAgeMs) continue;
      this.pending.delete(key);
      const sources = release(p);
      if (!p.overflowed) out.push({ key, reason: 'partial_incomplete', text: p.parts.join(''), pieces: p.parts.length, sources });
    }
    return out;
  }

  /** Everything still pending, for shutdown: nothing is dropped without a trace. */
  drain(): PartialFailure[] {
    return this.expire(Number.POSITIVE_INFINITY);
  }
}
