/**
 * The upper bound of the histogram bucket holding quantile q of hubble_adx_event_lag_seconds for
 * flows, read from a Prometheus text scrape ('n/a' before any row was written).
 */
export function lagQuantile(scrape: string, q: number): string {
  const buckets = [...scrape.matchAll(/^hubble_adx_event_lag_seconds_bucket\{le="([^"]+)",table="flows"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  const total = buckets[buckets.length - 1]?.[1] ?? 0;
  if (total === 0) return 'n/a';
  return buckets.find(([, c]) => c >= q * total)?.[0] ?? 'n/a';
}
