import { z } from 'zod';
import { TABLES } from '../schema/index.js';
import { configSchema, type Config } from './schema.js';

/**
 * The settings that decide what becomes of a flow (filtered, sampled out, kept, aggregated). A
 * record is decided by those of the run that counts it, also when a later run, configured
 * otherwise, makes it into rows again after a crash or a stop: its counts are already on disk, and
 * its rows must match them.
 */
export type OutcomeSettings = Pick<Config, 'filters' | 'sampling' | 'aggregation'>;

const outcomeSchema = z.object({ filters: configSchema.shape.filters, sampling: configSchema.shape.sampling, aggregation: configSchema.shape.aggregation });

export function outcomeSettingsOf(config: OutcomeSettings): OutcomeSettings {
  return { filters: config.filters, sampling: config.sampling, aggregation: config.aggregation };
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
