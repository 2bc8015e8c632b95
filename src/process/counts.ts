import type { Outcome } from '../enrich/index.js';
import type { ExporterKind, SkipReason } from '../extract/index.js';

/** What making one request (or one tick) into rows came to, for the metrics and the receiver. */
export interface Counts {
  records: number;
  /** Flow records made into rows (whatever enrichment then decided). */
  flows: number;
  /**
   * Flow records, and lines that may have been one but could not be read: always the flows kept,
   * aggregated, filtered, sampled out and dead-lettered together.
   */
  flowsSeen: number;
  /** Of those, the ones set aside as dead letters. */
  flowsDeadLettered: number;
  events: number;
  skipped: number;
  /** Dead letters of every stage, written one by one or summarized. */
  deadLettered: number;
  deadLetterRows: number;
  /** Past the dead-letter row bounds, counted in a summary row. */
  summarized: number;
  /** Aggregate rows made (a tick's). */
  aggregateRows: number;
  skips: Map<SkipReason, number>;
  outcomes: Map<Outcome, number>;
  /** Dead letters by `stage` and `reason`, joined by a tab. */
  deadLetters: Map<string, number>;
  eventKinds: Map<ExporterKind, number>;
  /** Hubble's lost events, by source and node. */
  lost: { source: string; node: string; events: number }[];
}

export function emptyCounts(): Counts {
  return {
    records: 0,
    flows: 0,
    flowsSeen: 0,
    flowsDeadLettered: 0,
    events: 0,
    skipped: 0,
    deadLettered: 0,
    deadLetterRows: 0,
    summarized: 0,
    aggregateRows: 0,
    skips: new Map(),
    outcomes: new Map(),
    deadLetters: new Map(),
    eventKinds: new Map(),
    lost: [],
  };
}

export function bump<K>(m: Map<K, number>, k: K, n = 1): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

/** What two slices of one request came to, together. */
export function addCounts(a: Counts, b: Counts): Counts {
  const sum = emptyCounts();
  for (const c of [a, b]) {
    sum.records += c.records;
    sum.flows += c.flows;
    sum.flowsSeen += c.flowsSeen;
    sum.flowsDeadLettered += c.flowsDeadLettered;
    sum.events += c.events;
    sum.skipped += c.skipped;
    sum.deadLettered += c.deadLettered;
    sum.deadLetterRows += c.deadLetterRows;
    sum.summarized += c.summarized;
    sum.aggregateRows += c.aggregateRows;
    for (const [k, n] of c.skips) bump(sum.skips, k, n);
    for (const [k, n] of c.outcomes) bump(sum.outcomes, k, n);
    for (const [k, n] of c.deadLetters) bump(sum.deadLetters, k, n);
    for (const [k, n] of c.eventKinds) bump(sum.eventKinds, k, n);
    for (const l of c.lost) sum.lost.push(l);
  }
  return sum;
}
