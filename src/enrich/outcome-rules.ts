import type { FlowRow } from '../schema/index.js';
import { Aggregator, type AggregationOptions } from './aggregator.js';
import { FlowFilters, type FlowFilterSpec } from './flow-filter.js';
import { Sampler } from './sampler.js';

export interface OutcomeOptions {
  filters: { allowList: readonly FlowFilterSpec[]; denyList: readonly FlowFilterSpec[] };
  sampling: { allowedOneIn: number };
  aggregation: AggregationOptions & { enabled: boolean };
  /** The enrichment whose columns filters read: FQDNs (entities) and workloads. */
  enrich: { entities: boolean; workloads: boolean };
}

/**
 * What decides a flow's outcome under one configuration: the enrichment filters read, the filters,
 * the sampler, and the
 * aggregators its allowed flows are folded into (aggregation's, and overload's, which folds
 * allowed flows of requests that came under pressure whatever aggregation says). Throws when the
 * filters are not valid.
 */
export class OutcomeRules {
  readonly filters: FlowFilters;
  readonly sampler: Sampler;
  readonly entities: boolean;
  readonly workloads: boolean;
  private readonly aggregator: Aggregator | null;
  private readonly overloadAggregator: Aggregator;

  constructor(o: OutcomeOptions) {
    this.filters = new FlowFilters(o.filters.allowList, o.filters.denyList);
    this.sampler = new Sampler(o.sampling.allowedOneIn);
    this.entities = o.enrich.entities;
    this.workloads = o.enrich.workloads;
    this.aggregator = o.aggregation.enabled ? new Aggregator(o.aggregation) : null;
    this.overloadAggregator = new Aggregator({ ...o.aggregation, verdicts: ['FORWARDED'] });
  }

  aggregatorFor(row: FlowRow, aggregateAllowed: boolean): Aggregator | null {
    if (this.aggregator?.accepts(row)) return this.aggregator;
    if (aggregateAllowed && this.overloadAggregator.accepts(row)) return this.overloadAggregator;
    return null;
  }

  /** Aggregate rows that can still be opened before aggregation.maxKeys. */
  get room(): number {
    return Math.min(this.aggregator?.room ?? Number.POSITIVE_INFINITY, this.overloadAggregator.room);
  }

  /** The aggregate rows held; both aggregators start empty again. */
  take(into: FlowRow[]): void {
    if (this.aggregator) for (const r of this.aggregator.take()) into.push(r);
    for (const r of this.overloadAggregator.take()) into.push(r);
  }
}
