import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { Pipeline } from '../../src/pipeline.js';
import { replay } from '../../src/replay.js';
import type { TableKey } from '../../src/schema/index.js';
import { coverageGaps, type CoverageRowLike } from '../support/coverage-gaps.js';
import { criRecord, jsonLinesBody, msgpackBody } from '../support/fluent-bit-bodies.js';
import { HUBBLE_DIR } from '../support/fixtures.js';
import { FlowGenerator } from '../support/generator.js';
import { flowLine } from '../support/hostile-bodies.js';
import { RowSink } from '../support/row-sink.js';
import { readRows, startService, type Running } from '../helpers/service.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const ndjson = { 'content-type': 'application/x-ndjson' };
const msgpack = { 'content-type': 'application/msgpack' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class MemorySink extends RowSink {
  readonly name = 'memory';
  readonly tables = new Map<TableKey, Record<string, unknown>[]>();
  protected async take(table: TableKey, rows: Record<string, unknown>[]): Promise<void> {
    this.tables.set(table, [...(this.tables.get(table) ?? []), ...rows]);
  }
}

type Coverage = CoverageRowLike & Record<'RecordsReceived' | 'FlowsSeen' | 'FlowsKept' | 'FlowsFiltered' | 'FlowsSampledOut' | 'FlowsDeadLettered' | 'FlowsAggregated' | 'RowsWritten', number> & { OverloadAggregating: boolean; Version: string };

const sum = (rows: Coverage[], k: keyof Coverage) => rows.reduce((n, r) => n + (r[k] as number), 0);

function expectBalanced(rows: Coverage[]): void {
  expect(rows.length).toBeGreaterThan(0);
  for (const r of rows) expect(r.FlowsSeen).toBe(r.FlowsKept + r.FlowsFiltered + r.FlowsSampledOut + r.FlowsDeadLettered);
}

/** Every fixture file, as its path and the flow records in it. */
function fixtureFiles(): { path: string; flows: number }[] {
  const files = [...readdirSync(HUBBLE_DIR).filter((f) => f.endsWith('.jsonl')), ...readdirSync(join(HUBBLE_DIR, 'hubble-otel')).map((f) => join('hubble-otel', f))];
  return files.map((f) => {
    const path = join(HUBBLE_DIR, f);
    const flows = readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim().startsWith('{'))
      .filter((l) => 'flow' in (JSON.parse(l) as object)).length;
    return { path, flows };
  });
}

describe('HubbleCoverage: what each node saw, kept and set aside, per window', () => {
  const running: Running[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });

  it('a replay of every fixture log writes coverage rows whose counts add up to the flows in it', async () => {
    for (const { path, flows } of fixtureFiles()) {
      const sink = new MemorySink();
      const p = new Pipeline(configSchema.parse({ spool: { enabled: false } }), createMetrics({ defaultMetrics: false }), sink, quiet);
      await p.recover();
      await replay(path, p);
      await p.close();
      const rows = (sink.tables.get('coverage') ?? []) as unknown as Coverage[];
      expectBalanced(rows);
      expect({ path, seen: sum(rows, 'FlowsSeen') }).toEqual({ path, seen: flows });
      expect(sum(rows, 'FlowsKept')).toBe((sink.tables.get('flows') ?? []).length);
    }
  });

  it('20,000 generated flows with filters, sampling, aggregation and dead letters all on: every row balances, every flow is accounted for', async () => {
    const sink = new MemorySink();
    const config = configSchema.parse({
      spool: { enabled: false },
      filters: { denyList: [{ destination_port: ['53'] }] },
      sampling: { allowedOneIn: 3 },
      aggregation: { enabled: true, windowSeconds: 3600 },
      coverage: { windowSeconds: 1 },
    });
    const p = new Pipeline(config, createMetrics({ defaultMetrics: false }), sink, quiet);
    await p.recover();
    const gen = new FlowGenerator(11);
    let flowLines = 0;
    let broken = 0;
    while (flowLines < 20_000) {
      const lines = gen.lines(1000);
      // Every fiftieth line cut short: a dead letter that may have been a flow.
      const sent = lines.map((l, i) => (i % 50 === 0 && l.startsWith('{"flow"') ? l.slice(0, 40) : l));
      broken += sent.filter((l, i) => l !== lines[i]).length;
      flowLines += sent.filter((l, i) => l === lines[i] && l.startsWith('{"flow"')).length;
      await p.ingest({ format: 'msgpack', encoding: '', body: Buffer.alloc(0), decoded: { records: sent.map((l) => ({ record: criRecord(l), timeSec: null })), bad: [] } });
    }
    await p.close();
    const rows = (sink.tables.get('coverage') ?? []) as unknown as Coverage[];
    expectBalanced(rows);
    expect(sum(rows, 'FlowsSeen')).toBe(flowLines + broken);
    expect(sum(rows, 'FlowsDeadLettered')).toBe(broken);
    expect(sum(rows, 'FlowsFiltered')).toBeGreaterThan(0);
    expect(sum(rows, 'FlowsSampledOut')).toBeGreaterThan(0);
    expect(sum(rows, 'FlowsAggregated')).toBeGreaterThan(0);
    // Kept flows are in HubbleFlows: one per row, or folded into an aggregate row (AggregatedFlows says how many);
    // the sampling weight stays apart, in SamplingWeight, so nothing needs dividing out.
    const flowRows = sink.tables.get('flows') ?? [];
    const represented = flowRows.reduce((n, r) => n + ((r.AggregatedFlows as number | null) ?? 1), 0);
    expect(flowRows.filter((r) => r.AggregatedFlows !== null).every((r) => r.SamplingWeight === 3)).toBe(true);
    expect(sum(rows, 'FlowsKept')).toBe(represented);
    expect(sum(rows, 'RecordsReceived')).toBeGreaterThanOrEqual(flowLines + broken);
  });

  it('a window with no traffic still gets its row (a heartbeat), and consecutive rows touch', async () => {
    const svc = await startService({ coverage: { windowSeconds: 1, nodeName: 'node-quiet' }, cluster: 'c-quiet' });
    running.push(svc);
    await sleep(3500);
    const rows = (await svc.rows('HubbleCoverage')) as unknown as Coverage[];
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const r of rows) {
      expect(r).toMatchObject({ Cluster: 'c-quiet', NodeName: 'node-quiet', FlowsSeen: 0, FlowsKept: 0, RecordsReceived: 0, SchemaVersion: 5 });
      expect(r.Version).toMatch(/^\d+\.\d+\.\d+/);
    }
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.WindowStart).toBe(rows[i - 1]!.WindowEnd);
    expect(coverageGaps(rows, [], Date.parse(rows[0]!.WindowStart), Date.now(), { windowMs: 1000 })).toEqual([]);
  });

  it('the gap rule finds a node that stopped and started again, Hubble lost events and a change of what is kept, over the local sink files', async () => {
    const out = mkdtempSync(join(tmpdir(), 'hubble-adx-coverage-'));
    const common = { coverage: { windowSeconds: 1, nodeName: 'node-a' }, cluster: 'c1', sink: { local: { directory: out } } } as const;
    const a = await startService(common);
    running.push(a);
    const lost = JSON.stringify({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '7' }, node_name: 'c1/node-a', time: new Date().toISOString() });
    expect((await a.post(jsonLinesBody([{ log: flowLine('a-1') }, { log: lost }]), ndjson)).status).toBe(200);
    await sleep(1500);
    await a.stop();
    const stoppedAt = Date.now();
    // Down for three windows, then back with a deny-list: a different ConfigHash.
    await sleep(3000);
    const b = await startService({ ...common, filters: { denyList: [{ destination_port: ['53'] }] } });
    running.push(b);
    expect((await b.post(msgpackBody([criRecord(flowLine('b-1'))]), msgpack)).status).toBe(200);
    await sleep(1500);
    await b.stop();
    const rows = readRows(out, 'HubbleCoverage') as unknown as Coverage[];
    expectBalanced(rows);
    const gaps = coverageGaps(rows, [], Date.parse(rows[0]!.WindowStart), Date.now(), { windowMs: 1000 });
    expect(gaps.map((g) => g.Kind).sort()).toEqual(['config_changed', 'hubble_lost_events', 'restart']);
    // Stopped cleanly, so a restart (not a crash), from its stop to the next start.
    const restart = gaps.find((g) => g.Kind === 'restart')!;
    expect(restart.GapStart).toBeLessThanOrEqual(stoppedAt);
    expect(restart.GapEnd - restart.GapStart).toBeGreaterThanOrEqual(2500);
    expect(sum(rows, 'HubbleLostEvents')).toBe(7);
    expect(sum(rows, 'FlowsSeen')).toBe(2);
  });
});

describe('overload.mode aggregate-allowed', () => {
  it('at 3x what the sink takes: every denied flow is kept one by one, and the FlowCount of allowed rows adds up to the allowed flows seen', async () => {
    // ADX takes a batch of at most 50 rows every 50 ms: about 1,000 rows/s.
    class SlowSink extends MemorySink {
      protected override async take(table: TableKey, rows: Record<string, unknown>[]): Promise<void> {
        await sleep(50);
        await super.take(table, rows);
      }
    }
    const sink = new SlowSink();
    const metrics = createMetrics({ defaultMetrics: false });
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-overload-'));
    const config = configSchema.parse({
      spool: { directory: dir },
      batch: { maxRows: 50, maxInFlight: 1, maxAgeMs: 50, maxPendingRows: 300 },
      overload: { mode: 'aggregate-allowed', afterSeconds: 1 },
      aggregation: { windowSeconds: 1 },
      coverage: { windowSeconds: 1 },
    });
    const p = new Pipeline(config, metrics, sink, quiet);
    await p.recover();
    let allowed = 0;
    let denied = 0;
    let aggregatingSeen = false;
    const end = Date.now() + 5000;
    for (let i = 0; Date.now() < end; i++) {
      // 3,000 flows/s offered: 150 every 50 ms, a third of them denied.
      const lines = Array.from({ length: 150 }, (_, j) =>
        j % 3 === 0
          ? flowLine(`deny-${i}-${j}`, { verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', IP: { source: '10.0.0.1', destination: '10.0.0.2' } })
          : flowLine(`allow-${i}-${j}`, { IP: { source: '10.0.0.1', destination: '10.0.0.3' }, l4: { TCP: { destination_port: 443 } } }),
      );
      denied += 50;
      allowed += 100;
      const body = jsonLinesBody(lines.map((l) => ({ log: l })));
      await p.ingest({ format: 'json_lines', encoding: '', body, decoded: { records: lines.map((l) => ({ record: { log: l }, timeSec: null })), bad: [] } });
      aggregatingSeen ||= (await metrics.registry.getSingleMetric('hubble_adx_overload_aggregating')!.get()).values[0]?.value === 1;
      await sleep(50);
    }
    await p.close();
    expect(aggregatingSeen).toBe(true);
    const flows = sink.tables.get('flows') ?? [];
    const deniedRows = flows.filter((r) => r.Verdict === 'DROPPED');
    expect(deniedRows).toHaveLength(denied);
    expect(new Set(deniedRows.map((r) => r.Uuid)).size).toBe(denied);
    const allowedRows = flows.filter((r) => r.Verdict === 'FORWARDED');
    expect(allowedRows.reduce((n, r) => n + ((r.FlowCount as number | null) ?? 1), 0)).toBe(allowed);
    expect(allowedRows.length).toBeLessThan(allowed / 2);
    const rows = (sink.tables.get('coverage') ?? []) as unknown as Coverage[];
    expectBalanced(rows);
    expect(sum(rows, 'FlowsSeen')).toBe(allowed + denied);
    expect(sum(rows, 'FlowsAggregated')).toBeGreaterThan(0);
    expect(rows.some((r) => r.OverloadAggregating)).toBe(true);
  }, 30_000);
});

