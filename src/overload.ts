/**
 * overload.mode aggregate-allowed: allowed flows are folded into aggregates once the pipeline has
 * been under pressure (rows in memory at their bound, or requests parked) for `afterSeconds`, until
 * everything is back under `resumeBelow` of its bound.
 */
export class OverloadPolicy {
  private since: number | null = null;

  constructor(
    private readonly mode: 'backpressure' | 'aggregate-allowed',
    private readonly afterSeconds: number,
  ) {}

  /** Note the pressure now: `atBound` starts it, `clear` (under the low watermark) ends it. */
  note(now: number, atBound: boolean, clear: boolean): void {
    if (this.since === null) {
      if (atBound) this.since = now;
    } else if (clear) {
      this.since = null;
    }
  }

  /** Whether allowed flows are aggregated now. */
  aggregating(now: number): boolean {
    return this.mode === 'aggregate-allowed' && this.since !== null && now - this.since >= this.afterSeconds * 1000;
  }
}
