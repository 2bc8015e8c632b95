import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';

/**
 * Recognises a chunk Fluent Bit sends again. Fluent Bit resends, byte for byte, a chunk whose answer
 * it did not see (hubble-adx killed between the spool's flush and the 200): made into rows a
 * second time it would be a duplicate of every flow in it. The digest of each spooled body is known
 * while its record is in the spool, and for `windowMs` after it is delivered, across restarts (in
 * a small log beside the segments); a body with a known digest is answered 200 and not made into
 * rows again. A digest is added only once its record is on disk, so a body whose append failed is
 * never taken for a resend.
 */
export class ResendFilter {
  /** Digests of requests in the spool, with how many records carry each. */
  private readonly live = new Map<string, number>();
  /** Digests of delivered requests, with when they are forgotten (insertion order: oldest first). */
  private readonly recent = new Map<string, number>();
  private logLines = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly logPath: string,
    private readonly windowMs: number,
    private readonly maxEntries: number,
  ) {}

  /** Read the log an earlier run left: digests not yet expired. */
  async load(now: number): Promise<void> {
    let text = '';
    try {
      text = await readFile(this.logPath, 'utf8');
    } catch {
      return;
    }
    for (const line of text.split('\n')) {
      const space = line.indexOf(' ');
      if (space <= 0) continue;
      const until = Number(line.slice(space + 1));
      this.logLines++;
      if (Number.isFinite(until) && until > now) this.remember(line.slice(0, space), until);
    }
  }

  has(key: string, now: number): boolean {
    if (this.live.has(key)) return true;
    const until = this.recent.get(key);
    return until !== undefined && until > now;
  }

  /** A record with this digest is in the spool. */
  spooled(key: string): void {
    this.live.set(key, (this.live.get(key) ?? 0) + 1);
  }

  /**
   * A record with this digest was delivered and leaves the spool: remembered for the window. The
   * line returned is for `record`, which the spool calls before it writes the acknowledgement that
   * lets the record go: a digest lost on a full disk, or in a crash between the two, would let a
   * resend after the next start be made into rows (and counted) a second time.
   */
  delivered(key: string, now: number): string {
    const n = this.live.get(key) ?? 0;
    if (n <= 1) this.live.delete(key);
    else this.live.set(key, n - 1);
    const until = now + this.windowMs;
    this.remember(key, until);
    this.logLines++;
    if (this.logLines > 2 * this.recent.size + 1000) this.compact(now);
    return `${key} ${until}\n`;
  }

  /** Append lines `delivered` returned to the log; rejects when they could not be written (tried again by the caller). */
  record(lines: string): Promise<void> {
    const done = this.writing.then(() => appendFile(this.logPath, lines, { mode: 0o600 }));
    this.writing = done.catch(() => undefined);
    return done;
  }

  get size(): number {
    return this.live.size + this.recent.size;
  }

  /** Let every write under way finish. */
  async settle(): Promise<void> {
    await this.writing;
  }

  private remember(key: string, until: number): void {
    this.recent.delete(key);
    this.recent.set(key, until);
    // Bounded: a sender making many small distinct bodies costs the oldest digests (a later resend
    // of those would be a duplicate), never unbounded memory.
    while (this.recent.size > this.maxEntries) this.recent.delete(this.recent.keys().next().value as string);
  }

  /** Rewrite the log with what is still remembered (a new file renamed over the old). */
  private compact(now: number): void {
    const lines: string[] = [];
    for (const [k, until] of this.recent) if (until > now) lines.push(`${k} ${until}\n`);
    this.logLines = lines.length;
    const tmp = `${this.logPath}.tmp`;
    this.writing = this.writing
      .then(async () => {
        await writeFile(tmp, lines.join(''), { mode: 0o600 });
        await rename(tmp, this.logPath);
      })
      .catch(() => undefined);
  }
}
