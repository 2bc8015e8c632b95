/**
 * The requests, and the bytes of their bodies once inflated, being decoded and made into rows at
 * once, by the receiver and by the record queue when it reads a request back from the spool. A decoded
 * body takes up to several times its text in the heap, so a few large bodies at once could take
 * the heap past its limit whatever each one's own bound: a request waits here for its turn (in
 * order) until its bytes fit, and is refused (503, Fluent Bit retries) when even the queue of
 * waiting bodies is full. A single body larger than the bound may go when nothing else is in flight.
 */
export class InflightBytes {
  private inflight = 0;
  private requests = 0;
  private waiting = 0;
  private readonly queue: { bytes: number; go: () => void }[] = [];

  constructor(
    private readonly maxRequests: number,
    private readonly max: number,
    private readonly maxWaiting: number,
  ) {}

  get bytes(): number {
    return this.inflight;
  }

  /** Resolves with the release of `bytes` once they fit; null at once when the wait is full. */
  acquire(bytes: number): Promise<() => void> | null {
    if (this.queue.length === 0 && this.fits(bytes)) return Promise.resolve(this.take(bytes));
    if (this.waiting + bytes > this.maxWaiting) return null;
    this.waiting += bytes;
    return new Promise((resolve) => this.queue.push({ bytes, go: () => resolve(this.take(bytes)) }));
  }

  /**
   * The same turn for work that cannot be answered 503 (a parked or replayed request read back from
   * the spool): it waits in the same line, whatever the line holds.
   */
  wait(bytes: number): Promise<() => void> {
    if (this.queue.length === 0 && this.fits(bytes)) return Promise.resolve(this.take(bytes));
    this.waiting += bytes;
    return new Promise((resolve) => this.queue.push({ bytes, go: () => resolve(this.take(bytes)) }));
  }

  private fits(bytes: number): boolean {
    return this.requests === 0 || (this.requests < this.maxRequests && this.inflight + bytes <= this.max);
  }

  private take(bytes: number): () => void {
    this.inflight += bytes;
    this.requests++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inflight -= bytes;
      this.requests--;
      while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) {
        const next = this.queue.shift()!;
        this.waiting -= next.bytes;
        next.go();
      }
    };
  }
}
