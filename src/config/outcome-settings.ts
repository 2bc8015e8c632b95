import { z } from 'zod';
import { TABLES } from '../schema/index.js';
import { configSchema, type Config } from './schema.js';

/**
 * The settings that decide what becomes of a flow (filtered, sampled out, kept, aggregated): the
 * filters, sampling and aggregation, and the enrichment that makes columns filters read (FQDNs,
 * workloads). A record is decided by those of the run that counts it, also when a later run,
 * configured otherwise, makes it into rows again after a crash or a stop: its counts are already
 * on disk, and its rows must match them.
 */
export type OutcomeSettings = Pick<Config, 'filters' | 'sampling' | 'aggregation'> & {
  /** Absent in what the first version that wrote outcome settings wrote: this process's own then. */
  enrich?: { entities: boolean; workloads: boolean } | undefined;
};

const outcomeSchema = z.object({
  filters: configSchema.shape.filters,
  sampling: configSchema.shape.sampling,
  aggregation: configSchema.shape.aggregation,
  enrich: z.object({ entities: z.boolean(), workloads: z.boolean() }).optional(),
});

export function outcomeSettingsOf(config: Pick<Config, 'filters' | 'sampling' | 'aggregation' | 'enrich'>): OutcomeSettings {
  return {
    filters: config.filters,
    sampling: config.sampling,
    aggregation: config.aggregation,
    enrich: { entities: config.enrich.entities, workloads: config.enrich.workloads },
  };
}

/** Settings a run wrote into the spool, read back: null when they are absent (an older version) or not valid now. */
export function readOutcomeSettings(raw: unknown): OutcomeSettings | null {
  if (raw === undefined || raw === null) return null;
  const parsed = outcomeSchema.safeParse(raw);
  if (!parsed.success) return null;
  const columns = new Set((TABLES.flows.columns as readonly { name: string }[]).map((c) => c.name));
  if (!parsed.data.aggregation.key.every((k) => columns.has(k))) return null;
  return parsed.data;
}
