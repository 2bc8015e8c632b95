/** When to try a failed delivery again: capped exponential backoff with jitter (`retry.*`). */
export class RetryPolicy {
  constructor(
    readonly minDelayMs: number,
    readonly maxDelayMs: number,
  ) {
    if (!(minDelayMs > 0) || !(maxDelayMs >= minDelayMs)) throw new Error(`retry: minDelayMs (${minDelayMs}) must be positive and at most maxDelayMs (${maxDelayMs})`);
  }

  /** The base wait after `failures` failures in a row (1: the first). */
  delayMs(failures: number): number {
    return Math.min(this.minDelayMs * 2 ** Math.min(Math.max(failures - 1, 0), 30), this.maxDelayMs);
  }

  /** The wait before the next attempt: half to all of the base wait, so that writers do not retry in step. */
  jitteredMs(failures: number): number {
    return this.delayMs(failures) * (0.5 + Math.random() / 2);
  }
}
