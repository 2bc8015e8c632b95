import type { SpoolRecord } from './spool.js';

/**
 * A request being made into rows, as the source of CRI partial pieces (the extractor counts the
 * unfinished lines holding its pieces in `pendingLines`). When a line it started is finished by a
 * later request, it stays in the spool until that request's rows are delivered (Spool.keepUntil),
 * so that a replay after a crash has every piece of the line. Its record is known only once the
 * append is done, which may be after a later request finished one of its lines.
 */
export class RequestHold {
  pendingLines = 0;
  private record: SpoolRecord | null = null;
  private settled = false;
  private waiters: ((r: SpoolRecord | null) => void)[] | null = null;

  /** Its spool record once appended (null when it was not spooled). */
  settle(record: SpoolRecord | null): void {
    this.record = record;
    this.settled = true;
    if (this.waiters) for (const w of this.waiters) w(record);
    this.waiters = null;
  }

  whenSpooled(fn: (r: SpoolRecord | null) => void): void {
    if (this.settled) fn(this.record);
    else (this.waiters ??= []).push(fn);
  }
}
