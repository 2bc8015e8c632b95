import type { Counts } from '../process/index.js';
import { LabelCap } from './label-cap.js';
import type { Metrics } from './registry.js';

/**
 * Adds what a request or a tick came to (returned by the processor) to the counters. Label values
 * that come from input (Hubble's node and source names) are capped.
 */
export class CountsPublisher {
  private readonly lostNode: LabelCap;
  private readonly lostSource: LabelCap;

  constructor(
    private readonly metrics: Metrics,
    maxLabelValues: number,
  ) {
    const capped = () => metrics.labelValuesCapped.inc({ metric: 'hubble_adx_hubble_lost_events_total' });
    this.lostNode = new LabelCap(maxLabelValues, capped);
    this.lostSource = new LabelCap(maxLabelValues, capped);
  }

  publish(c: Counts): void {
    const m = this.metrics;
    if (c.flows > 0) m.flows.inc(c.flows);
    for (const [reason, n] of c.skips) m.linesSkipped.inc({ reason }, n);
    for (const [outcome, n] of c.outcomes) m.enrichRows.inc({ outcome }, n);
    if (c.aggregateRows > 0) m.enrichRows.inc({ outcome: 'aggregate_rows' }, c.aggregateRows);
    for (const [key, n] of c.deadLetters) {
      const tab = key.indexOf('\t');
      const labels = { stage: key.slice(0, tab), reason: key.slice(tab + 1) };
      m.parseErrors.inc(labels, n);
      m.deadLetters.inc(labels, n);
    }
    if (c.summarized > 0) m.deadLettersSummarized.inc(c.summarized);
    for (const [kind, n] of c.eventKinds) m.events.inc({ kind }, n);
    for (const l of c.lost) {
      // Hubble's own count: normalize refuses one that cannot be (negative, fractional, huge), and
      // this is the last line before prom-client, which throws on a counter given one.
      if (!isCount(l.events)) continue;
      m.hubbleLostEvents.inc({ source: this.lostSource.value(l.source), node: this.lostNode.value(l.node) }, l.events);
    }
  }
}

const isCount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
