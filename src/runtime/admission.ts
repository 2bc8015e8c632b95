import type { Config } from '../config/index.js';
import type { Counts, Processor } from '../process/index.js';
import type { IngestSummary, ReceivedRequest } from '../receive/index.js';
import { Receipt, digestOf, keptBody, type Spool } from '../spool/index.js';
import type { RecordQueue } from './record-queue.js';

/** What admission reads of the running pipeline. */
export interface AdmissionDeps {
  config: Config;
  spool: Spool | null;
  queue: RecordQueue;
  processor: Processor;
  /** Whether the rows in memory leave room for a request's rows now. */
  hasRoom(): boolean;
  /** overload.mode aggregate-allowed is folding allowed flows now. */
  aggregating(now: number): boolean;
  /** Counts of a request taken without being spooled (agent log lines only, while requests are parked). */
  countJunk(c: Counts): void;
}

const NOTHING = { flows: 0, events: 0, skipped: 0, deadLettered: 0, deadLetterRows: 0 };

function summaryOf(c: Counts): IngestSummary {
  return { records: c.records, flows: c.flows, events: c.events, skipped: c.skipped, deadLettered: c.deadLettered, deadLetterRows: c.deadLetterRows, deferred: false, duplicate: false };
}

/**
 * A request, from the receiver to the record queue. Nothing changes before it is in the spool: it
 * is appended (group commit, fdatasync) first, and only then made into rows, at once when nothing
 * waits before it and memory has room, else later in its turn (parked). A body equal to one in the
 * spool or delivered lately is a resend, answered without being made into rows again. While
 * requests are parked, a request of agent log lines only (nothing it could make) is answered at
 * once instead of spooled, so that junk cannot fill the spool behind an outage.
 */
export async function admit(d: AdmissionDeps, r: ReceivedRequest): Promise<IngestSummary> {
  const receivedAt = Date.now();
  const records = r.decoded.records.length;
  const parking = !d.queue.idle || !d.hasRoom();
  if (parking && d.spool && r.decoded.bad.length === 0) {
    const junk = d.processor.junkOnly(r.decoded.records);
    if (junk) {
      d.countJunk(junk);
      return summaryOf(junk);
    }
  }
  const aggregateAllowed = d.aggregating(receivedAt);
  let receipt: Receipt;
  if (d.spool) {
    const kept = keptBody(r.encoding, r.body);
    const appended = await d.spool.appendRequest({
      format: r.format,
      encoding: kept.encoding,
      receivedAt,
      body: kept.body,
      aggregateAllowed,
      countedBefore: false,
      digest: digestOf(r.format, kept),
    });
    if (appended.resend) return { records, ...NOTHING, deferred: false, duplicate: true };
    receipt = appended.receipt;
  } else {
    // No spool: rows live in memory only (at most once on a crash).
    receipt = new Receipt(-1);
  }
  // Made into rows at once only when nothing waits before it and there is room; else it is read
  // back from the spool in its turn, and its decoded records are not held meanwhile.
  const now = d.queue.idle && d.hasRoom();
  let counts: Counts | null | undefined;
  let settle!: (c: Counts | null) => void;
  const made = new Promise<Counts | null>((res) => (settle = res));
  d.queue.push({
    kind: 'request',
    receipt,
    receivedAt,
    aggregateAllowed,
    countedBefore: false,
    live: now || !d.spool ? { decoded: r.decoded } : null,
    done: now ? (c) => settle(c) : null,
  });
  d.queue.kick();
  if (!now) return { records, ...NOTHING, deferred: true, duplicate: false };
  counts = await made;
  // Not made into rows now (the process is stopping): it is in the spool, made into rows at the next start.
  return counts ? summaryOf(counts) : { records, ...NOTHING, deferred: true, duplicate: false };
}
