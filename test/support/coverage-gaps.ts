/**
 * The rule of the HubbleCoverageGaps KQL function (src/schema/kql.ts), in TypeScript, to check its
 * logic over the rows the local sink writes: the language service checks the KQL, this checks what
 * it finds.
 */
export interface CoverageRowLike {
  TimeGenerated: string;
  WindowStart: string;
  WindowEnd: string;
  Cluster: string;
  NodeName: string;
  HubbleLostEvents: number;
  BackpressureResponses: number;
  ConfigHash: string;
}

export interface Gap {
  cluster: string;
  node: string;
  kind: 'missing_window' | 'hubble_lost_events' | 'backpressure' | 'config_changed';
  start: number;
  end: number;
}

export function coverageGaps(all: readonly CoverageRowLike[], start: number, end: number, windowMs: number, now = Date.now()): Gap[] {
  const t = Date.parse;
  // At least once: one row per node and window start, the latest.
  const byKey = new Map<string, CoverageRowLike>();
  for (const r of all) {
    if (!(t(r.WindowEnd) > start && t(r.WindowStart) < end)) continue;
    const k = `${r.Cluster}\u0000${r.NodeName}\u0000${t(r.WindowStart)}`;
    const had = byKey.get(k);
    if (!had || t(had.TimeGenerated) <= t(r.TimeGenerated)) byKey.set(k, r);
  }
  const rows = [...byKey.values()].sort((a, b) => a.Cluster.localeCompare(b.Cluster) || a.NodeName.localeCompare(b.NodeName) || t(a.WindowStart) - t(b.WindowStart));
  const gaps: Gap[] = [];
  const lastEnd = new Map<string, { cluster: string; node: string; end: number }>();
  rows.forEach((r, i) => {
    const prev = rows[i - 1];
    const same = prev !== undefined && prev.Cluster === r.Cluster && prev.NodeName === r.NodeName;
    const at = { cluster: r.Cluster, node: r.NodeName };
    if (same && t(r.WindowStart) - t(prev.WindowEnd) > windowMs) gaps.push({ ...at, kind: 'missing_window', start: t(prev.WindowEnd), end: t(r.WindowStart) });
    if (r.HubbleLostEvents > 0) gaps.push({ ...at, kind: 'hubble_lost_events', start: t(r.WindowStart), end: t(r.WindowEnd) });
    if (r.BackpressureResponses > 0) gaps.push({ ...at, kind: 'backpressure', start: t(r.WindowStart), end: t(r.WindowEnd) });
    if (same && prev.ConfigHash !== r.ConfigHash) gaps.push({ ...at, kind: 'config_changed', start: t(r.WindowStart), end: t(r.WindowEnd) });
    const key = `${r.Cluster}\u0000${r.NodeName}`;
    lastEnd.set(key, { ...at, end: Math.max(lastEnd.get(key)?.end ?? 0, t(r.WindowEnd)) });
  });
  for (const l of lastEnd.values()) {
    if (l.end < end - 2 * windowMs && l.end < now - 2 * windowMs) gaps.push({ cluster: l.cluster, node: l.node, kind: 'missing_window', start: l.end, end: Math.min(end, now) });
  }
  return gaps.sort((a, b) => a.start - b.start);
}
