import { describe, expect, it } from 'vitest';
import { normalizeEvent, normalizeFlow } from '../../src/normalize/index.js';
import {
  AUTH_TYPE, DROP_REASON, EVENT_TYPE, FLOW_TYPE, IP_VERSION, L7_FLOW_TYPE, POLICY_MATCH_TYPE, TRACE_OBSERVATION_POINT,
  TRACE_REASON, TRAFFIC_DIRECTION, VERDICT,
} from '../../src/normalize/enums.js';
import { FLOW_COLUMNS, type ColumnSpec, type FlowRow } from '../../src/schema/index.js';
import { hubbleFixtureLines } from '../support/fixtures.js';

type Leaf = { path: string[]; value: unknown };

/** Every leaf value of a JSON value, with its path; array elements get their index as a segment. */
function leaves(v: unknown, path: string[] = []): Leaf[] {
  if (Array.isArray(v)) return v.flatMap((x, i) => leaves(x, [...path, String(i)]));
  if (typeof v === 'object' && v !== null) return Object.entries(v).flatMap(([k, x]) => leaves(x, [...path, k]));
  return [{ path, value: v }];
}

function at(v: unknown, path: string[]): unknown {
  let node = v;
  for (const seg of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[seg];
  }
  return node;
}

const ENUMS = [AUTH_TYPE, DROP_REASON, EVENT_TYPE, FLOW_TYPE, IP_VERSION, L7_FLOW_TYPE, POLICY_MATCH_TYPE, TRACE_OBSERVATION_POINT, TRACE_REASON, TRAFFIC_DIRECTION, VERDICT];

/** Does a column value carry this leaf, in the column's own form? */
function carries(row: FlowRow, column: string, key: string, value: unknown): boolean {
  const col = (row as Record<string, unknown>)[column];
  if (col === null || col === undefined) return false;
  if (col === value || String(col) === String(value)) return true;
  if (typeof col === 'object') return JSON.stringify(col).includes(JSON.stringify(value));
  if (column === 'TcpFlags') return value === true && String(col).split(',').includes(key);
  if (column === 'NodeName' || column === 'Cluster') return value === `${row.Cluster}/${row.NodeName}`;
  if (typeof value === 'number') return ENUMS.some((t) => t.get(value) === col);
  return false;
}

const columnsFor = (dotted: string) =>
  (FLOW_COLUMNS as readonly ColumnSpec[]).filter((c) => (c.from ?? []).some((f) => dotted === f || dotted.startsWith(`${f}.`)));

describe('normalization loses nothing', () => {
  const lines = hubbleFixtureLines();

  it('reads the fixtures (at least 1,900 exporter records)', () => {
    expect(lines.length).toBeGreaterThanOrEqual(1900);
  });

  it('every leaf of every fixture flow is in a column or at its own path in AdditionalFlowData', () => {
    const missing: string[] = [];
    let flows = 0;
    let checked = 0;
    for (const { file, line, text } of lines) {
      const rec = JSON.parse(text) as Record<string, unknown>;
      if (typeof rec.flow !== 'object') continue;
      flows++;
      const env = { nodeName: (rec.node_name as string) ?? null, time: (rec.time as string) ?? null, lineTime: null, lineTimeSec: null };
      const row = normalizeFlow(rec.flow as Record<string, unknown>, env, 'fallback-cluster');
      const all = [...leaves(rec.flow, ['flow']), ...leaves({ node_name: rec.node_name, time: rec.time }).filter((l) => l.value !== undefined)];
      for (const { path, value } of all) {
        checked++;
        if (path[0] === 'flow' && at(row.AdditionalFlowData, path.slice(1)) === value) continue;
        const dotted = path.filter((s) => !/^\d+$/.test(s)).join('.');
        const key = path[path.length - 1]!;
        const cols = columnsFor(dotted);
        // The envelope time is only a fallback: with a flow.time present, the row rightly keeps that one.
        if (dotted === 'time' && typeof (rec.flow as Record<string, unknown>).time === 'string') continue;
        if (!cols.some((c) => carries(row, c.name, key, value))) {
          missing.push(`${file}:${line} ${path.join('.')} = ${JSON.stringify(value)} (columns tried: ${cols.map((c) => c.name).join(', ') || 'none'})`);
        }
      }
    }
    expect(flows).toBeGreaterThan(1900);
    expect(checked).toBeGreaterThan(50_000);
    expect(missing.slice(0, 20)).toEqual([]);
  });

  it('a field no Cilium version has yet is kept under its own path', () => {
    const row = normalizeFlow(
      { time: '2026-01-01T00:00:00Z', verdict: 'FORWARDED', future_field: { a: [1, 2] }, l4: { TCP: { destination_port: 443, window: 7 } } },
      { nodeName: 'n1', time: null, lineTime: null, lineTimeSec: null },
      'c',
    );
    expect(row.AdditionalFlowData).toEqual({ future_field: { a: [1, 2] }, l4: { TCP: { window: 7 } } });
    expect(row.DestinationPort).toBe(443);
  });

  it('non-flow records keep their whole payload in Details', () => {
    for (const { text } of lines) {
      const rec = JSON.parse(text) as Record<string, unknown>;
      const kind = ['lost_events', 'agent_event', 'debug_event'].find((k) => k in rec);
      if (!kind) continue;
      const row = normalizeEvent(kind, rec[kind] as Record<string, unknown>, { nodeName: (rec.node_name as string) ?? null, time: (rec.time as string) ?? null, lineTime: null, lineTimeSec: null }, 'c');
      expect(row.Details).toEqual(rec[kind]);
      expect(row.EventKind).toBe(kind);
    }
  });
});
