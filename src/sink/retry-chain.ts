import type { Batch } from '../batch/index.js';
import { splitBatch } from '../batch/index.js';
import type { RetryPolicy } from '../retry-policy.js';
import type { Sink, Verdict } from './types.js';

/** What the chain reports as it goes (metrics and logs); it decides nothing. */
export interface DeliveryObserver {
  retrying(batch: Batch, route: string, verdict: Verdict, attempt: number, delayMs: number): void;
  fellBack(batch: Batch, from: string, reason: string): void;
  setAside(batch: Batch, verdict: Verdict): void;
  cannotSetAside(batch: Batch, verdict: Verdict, err: unknown): void;
}

export interface RetryChainOptions {
  retry: RetryPolicy;
  /** Longest wait for one attempt before it counts as a timeout (retried). */
  attemptTimeoutMs: number;
  /** A route with a next one is left after this many failed attempts, or after this long. */
  fallbackAfter: { attempts: number; ms: number };
}

/** Delivery stopped (shutdown) while the batch was being retried: it stays pending, in the spool. */
export class DeliveryStopped extends Error {
  constructor() {
    super('delivery stopped while the batch was being retried; it stays pending');
    this.name = 'DeliveryStopped';
  }
}

export interface Delivered {
  /** Rows of the batch the destination refused for good, kept in its dead-letter place. */
  setAside: number;
}

/**
 * The one way a batch is delivered: classify → retry → timeout → send. Each attempt is one `send`,
 * bounded by a timeout; a failure is classified by the sink, then retried with the one backoff
 * policy for as long as it is transient (the batch stays in the spool meanwhile), split in halves
 * when too large, moved to the sink's next route (ADX queued ingestion) when the verdict or a spent
 * route says so, or set aside for good. Resolves once every row is taken or set aside; rejects only
 * with DeliveryStopped.
 */
export class RetryChain {
  private stopped = false;
  /** Batches waiting to be tried again: a stop, or the destination answering again, ends their wait. */
  private readonly waiting = new Set<() => void>();

  constructor(
    private readonly sink: Sink,
    private readonly o: RetryChainOptions,
    private readonly observer: DeliveryObserver,
  ) {}

  get maxBatchBytes(): number {
    return this.sink.maxBatchBytes;
  }

  deliver(batch: Batch): Promise<Delivered> {
    if (batch.rows === 0) return Promise.resolve({ setAside: 0 });
    return this.onRoute(batch, 0);
  }

  /** Stop retrying: batches being retried reject with DeliveryStopped. */
  stop(): void {
    this.stopped = true;
    this.wakeAll();
  }

  private wakeAll(): void {
    const all = [...this.waiting];
    this.waiting.clear();
    for (const w of all) w();
  }

  private async onRoute(batch: Batch, routeIndex: number): Promise<Delivered> {
    const route = this.sink.routes[routeIndex]!;
    const canFallBack = routeIndex + 1 < this.sink.routes.length;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) throw new DeliveryStopped();
      let verdict: Verdict;
      try {
        await this.attempt(batch, route);
        // The destination answers again (after an outage): every batch waiting for its next try goes
        // now, instead of sleeping out a backoff grown through the outage (up to retry.maxDelayMs).
        if (this.waiting.size > 0) this.wakeAll();
        return { setAside: 0 };
      } catch (err) {
        if (this.stopped) throw new DeliveryStopped();
        verdict = this.sink.classify(err);
      }
      const spent = canFallBack && (attempt >= this.o.fallbackAfter.attempts || Date.now() - started >= this.o.fallbackAfter.ms);
      if (verdict.action === 'retry' && !spent) {
        const delay = this.o.retry.delayMs(attempt);
        this.observer.retrying(batch, route, verdict, attempt, delay);
        await this.wait(attempt);
        continue;
      }
      if (verdict.action === 'split' && batch.rows > 1) {
        let setAside = 0;
        for (const part of splitBatch(batch, 2)) setAside += (await this.onRoute(part, routeIndex)).setAside;
        return { setAside };
      }
      if (canFallBack && verdict.action !== 'dead_letter') {
        this.observer.fellBack(batch, route, verdict.action === 'retry' ? 'retries_spent' : verdict.reason);
        return this.onRoute(batch, routeIndex + 1);
      }
      return this.setAside(batch, verdict, route, attempt);
    }
  }

  /** Set a refused batch aside; when even that fails (the place is full), it is retried later, never dropped. */
  private async setAside(batch: Batch, verdict: Verdict, route: string, attempts: number): Promise<Delivered> {
    for (let failures = 1; ; failures++) {
      try {
        await this.sink.setAside(batch, verdict, route, attempts);
        this.observer.setAside(batch, verdict);
        return { setAside: batch.rows };
      } catch (err) {
        if (this.stopped) throw new DeliveryStopped();
        this.observer.cannotSetAside(batch, verdict, err);
        await this.wait(failures);
      }
    }
  }

  private async attempt(batch: Batch, route: string): Promise<void> {
    const p = this.sink.send(batch, route);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error(`no answer within ${this.o.attemptTimeoutMs} ms`), { code: 'ETIMEDOUT' })),
        this.o.attemptTimeoutMs,
      );
    });
    try {
      // An abandoned attempt may still succeed: its rows may then arrive twice, which the Uuid
      // de-duplication view absorbs.
      await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
      p.catch(() => undefined);
    }
  }

  private wait(failures: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.o.retry.jitteredMs(failures));
      this.waiting.add(done);
    });
  }
}
