/**
 * containerd splits a log line longer than 16 KiB into pieces tagged `P` (partial) and a last
 * piece tagged `F` (full). Fluent Bit's `Parser cri` hands the pieces over one by one (tag in
 * `logtag`), so they are joined here, per stream, before the line is parsed. Bounded in bytes and
 * age: a line that grows too long or never gets its final piece is handed back as a failure.
 */

export interface PartialFailure {
  key: string;
  reason: 'partial_too_large' | 'partial_incomplete';
  text: string;
  pieces: number;
}

interface Pending {
  parts: string[];
  bytes: number;
  firstAt: number;
  overflowed: boolean;
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
  addPartial(key: string, piece: string, now: number): PartialFailure | null {
    let p = this.pending.get(key);
    if (!p) {
      p = { parts: [], bytes: 0, firstAt: now, overflowed: false };
      this.pending.set(key, p);
    }
    if (p.overflowed) return null;
    p.parts.push(piece);
    p.bytes += piece.length;
    if (p.bytes > this.maxBytes) {
      // Keep the key so that later pieces of the same line are discarded until its `F` arrives.
      p.overflowed = true;
      const text = p.parts.join('');
      const pieces = p.parts.length;
      p.parts = [];
      return { key, reason: 'partial_too_large', text, pieces };
    }
    return null;
  }

  /**
   * The `F` piece: returns the whole line, or null when the line had overflowed (already reported).
   * With nothing pending, the piece is the whole line.
   */
  complete(key: string, last: string): string | null {
    const p = this.pending.get(key);
    if (!p) return last;
    this.pending.delete(key);
    if (p.overflowed) return null;
    p.parts.push(last);
    return p.parts.join('');
  }

  /** Lines whose final piece has not come within maxAgeMs. */
  expire(now: number): PartialFailure[] {
    const out: PartialFailure[] = [];
    for (const [key, p] of this.pending) {
      if (now - p.firstAt < this.maxAgeMs) continue;
      this.pending.delete(key);
      if (!p.overflowed) out.push({ key, reason: 'partial_incomplete', text: p.parts.join(''), pieces: p.parts.length });
    }
    return out;
  }

  /** Everything still pending, for shutdown: nothing is dropped without a trace. */
  drain(): PartialFailure[] {
    return this.expire(Number.POSITIVE_INFINITY);
  }
}
