import { createHash } from 'node:crypto';

/** The settings that decide which flows end up in the flows table, and how. */
export interface KeptBy {
  filters: unknown;
  sampling: unknown;
  aggregation: unknown;
  overload: unknown;
  limits: unknown;
  extract: unknown;
}

/** A short hash of what decides which flows are kept: equal settings, equal hash, on every node. */
export function configHash(c: KeptBy): string {
  const text = canonical({ filters: c.filters, sampling: c.sampling, aggregation: c.aggregation, overload: c.overload, limits: c.limits, extract: c.extract });
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** JSON with the keys of every object sorted, so that the order settings were written in does not matter. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
