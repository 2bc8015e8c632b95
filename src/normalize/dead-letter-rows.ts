import type { DeadLetter } from '../extract/index.js';
import { SCHEMA_VERSION, type DeadLetterRow } from '../schema/index.js';

export interface DeadLetterLimits {
  /** Rows written for one request; the rest go into its summary row. */
  perRequest: number;
  /** Rows written per minute by this instance (token bucket); past it only summaries are written. */
  perMinute: number;
  /** Raw text kept in one row. */
  maxRawBytes: number;
}

/**
 * Dead-letter rows with a bound: one request, however broken, writes at most `perRequest` rows
 * plus one summary (counts by reason, the first raw text once), and the instance at most about
 * `perMinute` rows a minute. A flood of garbage costs a few rows in ADX, not one row per byte,
 * and does not bury the dead letters that matter. Each request is one scope: `add` its dead
 * letters, then `close` for its summary row.
 */
export class DeadLetterRows {
  private inScope = 0;
  private tokens: number;
  private refilledAt: number;
  private summarized = new Map<string, number>();
  private summarizedCount = 0;
  private first: DeadLetter | null = null;

  constructor(private readonly limits: DeadLetterLimits) {
    this.tokens = limits.perMinute;
    this.refilledAt = Date.now();
  }

  /** The row for this dead letter, or null when it only counts in the scope's summary. */
  add(d: DeadLetter, now: number): DeadLetterRow | null {
    this.refill(now);
    if (this.inScope < this.limits.perRequest && this.tokens >= 1) {
      this.inScope++;
      this.tokens--;
      return this.row(d.stage, d.reason, d.message, d.raw, d.nodeName, now);
    }
    const key = `${d.stage}/${d.reason}`;
    this.summarized.set(key, (this.summarized.get(key) ?? 0) + 1);
    this.summarizedCount++;
    this.first ??= d;
    return null;
  }

  /** End the scope: the summary row of what was not written one by one, if anything. */
  close(now: number): { row: DeadLetterRow; summarized: number } | null {
    this.inScope = 0;
    const first = this.first;
    if (!first) return null;
    const counts = [...this.summarized].map(([k, n]) => `${k}: ${n}`).join(', ');
    const n = this.summarizedCount;
    this.summarized = new Map();
    this.summarizedCount = 0;
    this.first = null;
    const message =
      `${n} more dead letters, past limits.maxDeadLetterRowsPerRequest (${this.limits.perRequest}) or limits.maxDeadLetterRowsPerMinute (${this.limits.perMinute}), ` +
      `counted here by stage/reason (${counts}); RawData is the first one's. First message: ${first.message}`;
    return { row: this.row(first.stage, 'summarized', message, first.raw, first.nodeName, now), summarized: n };
  }

  private refill(now: number): void {
    const elapsed = now - this.refilledAt;
    if (elapsed <= 0) return;
    this.tokens = Math.min(this.limits.perMinute, this.tokens + (elapsed * this.limits.perMinute) / 60_000);
    this.refilledAt = now;
  }

  private row(stage: DeadLetter['stage'], reason: string, message: string, raw: string, nodeName: string | null, now: number): DeadLetterRow {
    const max = this.limits.maxRawBytes;
    const cut = raw.length > max;
    return {
      TimeGenerated: new Date(now).toISOString(),
      Stage: stage,
      Reason: reason,
      Message: cut ? `${message} [raw cut from ${raw.length} to ${max} characters]` : message,
      NodeName: nodeName,
      RawData: cut ? raw.slice(0, max) : raw,
      ReceiverNode: null,
      RunId: null,
      SchemaVersion: SCHEMA_VERSION,
    };
  }
}
