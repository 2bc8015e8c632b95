import type { Logger } from './logger.js';
import type { Spool, SpooledRequest, SpoolToken } from './spool/index.js';

/** What the queue needs from the runtime. */
export interface ParkedRequestsDeps {
  spool: Spool;
  /** Make a spooled request into rows and hand them on; resolves with how many. */
  make(request: SpooledRequest, token: SpoolToken): Promise<number>;
  /** Whether the rows in memory leave room for another request's. */
  hasRoom(): boolean;
  log: Logger;
}

interface Parked {
  token: SpoolToken;
  receivedAt: number;
  /** Left by an earlier run (startup replay). */
  backlog: boolean;
}

/**
 * Requests in the spool not yet made into rows, oldest first: what an earlier run left, and what
 * arrived while the rows in memory were at their bounds (an ADX outage). Only where each one is
 * is kept in memory; it is read back from the spool in its turn, while there is room.
 */
export class ParkedRequests {
  private queue: Parked[] = [];
  private running: Promise<void> | null = null;
  private stopped = false;
  private backlogLeft = 0;
  private backlogDone: (() => void) | null = null;
  /** Rows made from the backlog of an earlier run. */
  backlogRows = 0;

  constructor(private readonly d: ParkedRequestsDeps) {}

  get length(): number {
    return this.queue.length;
  }

  /** When the oldest parked request was received. */
  get oldestReceivedAt(): number | undefined {
    return this.queue[0]?.receivedAt;
  }

  add(token: SpoolToken, receivedAt: number, backlog: boolean): void {
    this.queue.push({ token, receivedAt, backlog });
    if (backlog) this.backlogLeft++;
  }

  /** Resolves once the backlog added so far is made into rows. */
  backlogMade(): Promise<void> {
    if (this.backlogLeft === 0) return Promise.resolve();
    return new Promise((res) => (this.backlogDone = res));
  }

  /** Make parked requests into rows, oldest first, while there is room; call again as batches are written. */
  kick(): void {
    if (this.running || this.queue.length === 0 || this.stopped) return;
    this.running = this.run().finally(() => {
      this.running = null;
      // What was parked while the loop ended gets its own turn.
      if (this.queue.length > 0 && this.d.hasRoom()) this.kick();
    });
  }

  private async run(): Promise<void> {
    const { spool, log } = this.d;
    while (this.queue.length > 0 && !this.stopped && this.d.hasRoom()) {
      const p = this.queue[0]!;
      let req: SpooledRequest | null;
      try {
        req = await spool.readRequest(p.token);
      } catch (err) {
        log.error({ err, offset: p.token.offset }, 'could not read a parked request back from the spool; trying again');
        await new Promise((res) => setTimeout(res, 1000));
        continue;
      }
      this.queue.shift();
      let rows = 0;
      if (!req) {
        log.error({ offset: p.token.offset }, 'a parked spool record is not a request this version can read; it is let go');
        spool.expect(p.token, 0);
      } else {
        rows = await this.d.make(req, p.token);
      }
      if (p.backlog) {
        this.backlogRows += rows;
        if (--this.backlogLeft === 0) this.backlogDone?.();
      }
    }
  }

  /** Resolves once every parked request is made into rows (they go as batches are written). */
  async drained(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) {
      this.kick();
      await (this.running ?? new Promise((r) => setTimeout(r, 20)));
      if (this.queue.length > 0) await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Make nothing more into rows; what is parked stays in the spool. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}
