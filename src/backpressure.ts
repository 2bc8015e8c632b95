/**
 * When to answer 503: above a bound, until everything is back under `resumeBelow` of its bound
 * (hysteresis), so that Fluent Bit's retries do not flap at the edge.
 */
export class Backpressure {
  private refusing: string | null = null;

  constructor(private readonly resumeBelow: number) {}

  /** `over(fraction)`: which bound is over that fraction of itself, or null. */
  reason(over: (fraction: number) => string | null): string | null {
    if (this.refusing) {
      if (over(this.resumeBelow) === null) this.refusing = null;
    } else {
      this.refusing = over(1);
    }
    return this.refusing;
  }
}
