import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { criRecord, gzip, msgpackBody } from '../support/fluent-bit-bodies.js';
import { FlowGenerator } from '../support/generator.js';
import { configSchema, type Config } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { Pipeline } from '../../src/pipeline.js';
import { decodeBody } from '../../src/receive/index.js';
import type { TableKey } from '../../src/schema/index.js';
import { RowSink } from '../support/row-sink.js';
import type { Sink } from '../../src/sink/index.js';
import { metricValue } from '../helpers/service.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Keeps what it is given, or refuses everything (ADX down). */
class MemorySink extends RowSink {
  readonly name = 'memory';
  readonly tables = new Map<TableKey, Record<string, unknown>[]>();
  constructor(public down = false) {
    super();
  }
  protected async take(table: TableKey, rows: Record<string, unknown>[]): Promise<void> {
    if (this.down) throw new Error('ADX is down');
    this.tables.set(table, [...(this.tables.get(table) ?? []), ...rows]);
  }
  rows(table: TableKey): Record<string, unknown>[] {
    return this.tables.get(table) ?? [];
  }
}

/** A configuration with its own fresh spool directory. */
function spooled(extra: Record<string, unknown> = {}): Config {
  return configSchema.parse({
    spool: { directory: mkdtempSync(join(tmpdir(), 'hubble-adx-replay-')) },
    batch: { maxAgeMs: 20 },
    retry: { minDelayMs: 10, maxDelayMs: 50 },
    coverage: { windowSeconds: 3600, nodeName: 'node-a' },
    ...extra,
  });
}

async function started(config: Config, sink: Sink, metrics = createMetrics({ defaultMetrics: false })): Promise<Pipeline> {
  const p = new Pipeline(config, metrics, sink, quiet);
  await p.recover();
  return p;
}

/**
 * The process dies (kill -9): nothing of it is stopped cleanly. Its lock is left stale, and the
 * next start takes the directory over; the dead pipeline, still in this test's memory, loses its
 * spool (it answers nothing more) and is put away without writing anything.
 */
async function killed(dead: Pipeline, config: Config): Promise<void> {
  const lock = join(config.spool.directory, 'spool.lock');
  rmSync(lock, { recursive: true, force: true });
  mkdirSync(lock);
  const then = new Date(Date.now() - 10_000);
  utimesSync(lock, then, then);
  (dead as unknown as { zombie: Pipeline }).zombie = dead;
}

/** As the receiver does: decode a msgpack+gzip body and hand it on with the body as received. */
async function send(p: Pipeline, body: Buffer, config: Config) {
  const d = await decodeBody(body, 'msgpack', 'gzip', config.limits, config.server.jsonDateKey);
  if (!d.ok) throw new Error(d.error.message);
  return p.ingest({ format: 'msgpack', encoding: 'gzip', body, decoded: d.decoded });
}

const uuids = (s: MemorySink) => s.rows('flows').map((r) => r.Uuid);
const sum = (rows: Record<string, unknown>[], k: string) => rows.reduce((n, r) => n + Number(r[k] ?? 0), 0);

describe('spooled requests, after a crash', () => {
  it('are made into the same rows again: flows, events, dead letters and identities, and counted once', async () => {
    const config = spooled();
    const lines = [...new FlowGenerator(7).lines(300), '{"flow":{"uuid":"broken"', '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"},"node_name":"c/n","time":"2026-01-01T00:00:00Z"}'];
    const body = gzip(msgpackBody(lines.map((l) => criRecord(l))));

    // First run: the request is acknowledged (spooled) and counted, ADX is down, the process dies.
    const down = new MemorySink(true);
    const first = await started(config, down);
    const summary = await send(first, body, config);
    await killed(first, config);
    // The rows as they would have been written: the same input through a memory-only pipeline.
    const before = new MemorySink();
    const reference = await started(configSchema.parse({ spool: { enabled: false }, coverage: { nodeName: 'node-a' } }), before);
    await send(reference, body, config);
    await reference.close();

    // Second run on the same spool: made into rows again from the request itself.
    const after = new MemorySink();
    const metrics = createMetrics({ defaultMetrics: false });
    const second = await started(config, after, metrics);
    await first.close(0);
    await second.flush();
    await second.close();
    const strip = (rows: Record<string, unknown>[]) => rows.map(({ RunId: _r, CoverageWindow: _w, TimeGenerated: _t, ...rest }) => rest);
    expect(uuids(after)).toEqual(uuids(before));
    expect(uuids(after)).toHaveLength(summary.flows);
    expect(strip(after.rows('flows'))).toEqual(strip(before.rows('flows')));
    expect(strip(after.rows('events'))).toEqual(strip(before.rows('events')));
    expect(after.rows('deadLetters').map((r) => [r.Reason, r.RawData])).toEqual([['invalid_json', '{"flow":{"uuid":"broken"']]);
    expect(strip(after.rows('identities'))).toEqual(strip(before.rows('identities')));
    // Counted once: the first run counted it when it came; its coverage window, open at the crash,
    // is closed by the second run with exactly what it held (reason crash), and nothing is counted again.
    const coverage = after.rows('coverage');
    const firstRun = coverage.filter((r) => r.PreviousRunEnd === 'none');
    expect(firstRun.map((r) => r.WindowEndReason)).toEqual(['crash']);
    expect(sum(coverage, 'FlowsSeen')).toBe(summary.flows + 1);
    expect(sum(coverage, 'HubbleLostEvents')).toBe(3);
    // Every flow row names the run and window that counted it: the first run's.
    expect(new Set(after.rows('flows').map((r) => `${r.RunId}/${r.CoverageWindow}`))).toEqual(new Set([`${firstRun[0]!.RunId}/0`]));
    const secondRun = coverage.filter((r) => r.PreviousRunEnd === 'crash');
    expect(secondRun.map((r) => r.WindowEndReason)).toEqual(['stop']);

    // Third run: everything was delivered and counted, nothing is left to make.
    const third = new Pipeline(config, createMetrics({ defaultMetrics: false }), new MemorySink(), quiet);
    expect(await third.recover()).toBe(0);
    await third.close();
  });

  it('a line whose CRI pieces came in two requests is joined again: the first request is kept until the line is delivered', async () => {
    const config = spooled();
    const line = JSON.stringify({ flow: { uuid: 'split-across-requests', verdict: 'DROPPED', time: '2026-01-01T00:00:00Z' }, node_name: 'c/n' });
    const stream = { kubernetes: { namespace_name: 'kube-system', pod_name: 'cilium-x', container_name: 'cilium-agent' }, stream: 'stdout' };
    const requestA = gzip(msgpackBody([{ log: line.slice(0, 25), logtag: 'P', ...stream }]));
    const requestB = gzip(msgpackBody([{ log: line.slice(25), logtag: 'F', ...stream }]));

    const first = await started(config, new MemorySink(true));
    expect((await send(first, requestA, config)).flows).toBe(0);
    expect((await send(first, requestB, config)).flows).toBe(1);
    await killed(first, config);

    const delivered = new MemorySink();
    const second = await started(config, delivered);
    await first.close(0);
    await second.flush();
    await second.close();
    expect(uuids(delivered)).toEqual(['split-across-requests']);
    expect(delivered.rows('deadLetters')).toEqual([]);
    expect(sum(delivered.rows('coverage'), 'FlowsSeen')).toBe(1);

    const third = await started(config, new MemorySink());
    await third.flush();
    await third.close();
    expect(readdirSync(config.spool.directory).filter((f) => f.endsWith('.wal'))).toEqual([]);
  });

  it('a restart is no wait for a line\'s last piece: a first piece replayed after longer than extract.partialMaxAgeMs still joins the piece that comes next', async () => {
    // The first run dies at once: here it stays in memory, so its own bound is out of reach.
    const config = spooled({ extract: { partialMaxAgeMs: 60_000 } });
    const restarted: Config = { ...config, extract: { ...config.extract, partialMaxAgeMs: 2000 } };
    const line = JSON.stringify({ flow: { uuid: 'pieces-across-a-restart', verdict: 'DROPPED', time: '2026-01-01T00:00:00Z' } });
    const stream = { kubernetes: { namespace_name: 'kube-system', pod_name: 'cilium-r', container_name: 'cilium-agent' }, stream: 'stdout' };
    const first = await started(config, new MemorySink(true));
    await send(first, gzip(msgpackBody([{ log: line.slice(0, 30), logtag: 'P', ...stream }])), config);
    await killed(first, config);
    // Down longer than the age bound (Fluent Bit holds the last piece meanwhile, retrying).
    await new Promise((r) => setTimeout(r, 2500));
    const delivered = new MemorySink();
    const second = await started(restarted, delivered);
    await first.close(0);
    // The last piece comes a while after the start (Fluent Bit's retry), within the bound; the
    // pipeline's once-a-second tick has looked at the line's age meanwhile.
    await new Promise((r) => setTimeout(r, 1300));
    await send(second, gzip(msgpackBody([{ log: line.slice(30), logtag: 'F', ...stream }])), restarted);
    await second.flush();
    await second.close();
    expect(delivered.rows('deadLetters').map((r) => r.Reason)).toEqual([]);
    expect(uuids(delivered)).toEqual(['pieces-across-a-restart']);
  });

  it('a first piece replayed after a restart is still given up once it has waited extract.partialMaxAgeMs in the new run', async () => {
    const config = spooled({ extract: { partialMaxAgeMs: 300 } });
    const stream = { kubernetes: { namespace_name: 'kube-system', pod_name: 'cilium-s', container_name: 'cilium-agent' }, stream: 'stdout' };
    const first = await started(config, new MemorySink(true));
    await send(first, gzip(msgpackBody([{ log: '{"flow":{"uuid":"never-fin', logtag: 'P', ...stream }])), config);
    await killed(first, config);
    const delivered = new MemorySink();
    const second = await started(config, delivered);
    await first.close(0);
    for (let i = 0; i < 100 && delivered.rows('deadLetters').length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await second.close();
    expect(delivered.rows('deadLetters').map((r) => r.Reason)).toEqual(['partial_incomplete']);
  });

  it('a request whose pieces wait for a later line is not let go before that line is decided and delivered, across a crash and a clean stop', async () => {
    const config = spooled();
    const dir = config.spool.directory;
    const line = JSON.stringify({ flow: { uuid: 'late-final-piece', verdict: 'DROPPED', time: '2026-01-01T00:00:00Z' } });
    const stream = { kubernetes: { namespace_name: 'kube-system', pod_name: 'cilium-y', container_name: 'cilium-agent' } };
    const other = JSON.stringify({ flow: { uuid: 'whole', verdict: 'DROPPED', time: '2026-01-01T00:00:00Z' } });
    const body = gzip(msgpackBody([{ log: other, ...stream, kubernetes: { ...stream.kubernetes, pod_name: 'cilium-z' } }, { log: line.slice(0, 20), logtag: 'P', ...stream }]));
    const sink = new MemorySink();
    const p = await started(config, sink);
    await send(p, body, config);
    await p.flush();
    expect(uuids(sink)).toEqual(['whole']);
    // Delivered, yet kept: its piece is part of an unfinished line.
    await killed(p, config);
    const again = new MemorySink();
    const second = await started(config, again);
    await p.close(0);
    await second.flush();
    // Made into rows again (its flow a duplicate the Uuid view removes); the line still waits.
    expect(uuids(again)).toEqual(['whole']);
    // A clean stop does not give the line up: its piece stays in the spool for the next start.
    await second.close();
    expect(again.rows('deadLetters')).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.wal')).length).toBeGreaterThan(0);
    // The next start has the line again, and Fluent Bit's next chunk finishes it.
    const last = new MemorySink();
    const third = await started(config, last);
    await send(third, gzip(msgpackBody([{ log: line.slice(20), logtag: 'F', ...stream }])), config);
    await third.flush();
    await third.close();
    // The request that brought the first piece is made into rows again to have its piece (its own
    // row again: a duplicate the Uuid view removes); the line is whole.
    expect(uuids(last).sort()).toEqual(['late-final-piece', 'whole']);
    // Counted once each, 'whole' by the first run, the line by the third.
    expect(sum([...again.rows('coverage'), ...last.rows('coverage')], 'FlowsSeen')).toBe(2);
    expect(readdirSync(dir).filter((f) => f.endsWith('.wal'))).toEqual([]);
  });

  it('aggregated flows are not only in memory: a crash before their aggregate row is written loses none and counts none twice', async () => {
    const config = spooled({ aggregation: { enabled: true, windowSeconds: 3600 } });
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ flow: { uuid: `agg-${i}`, verdict: 'FORWARDED', time: '2026-01-01T00:00:00Z', IP: { source: '10.0.0.1', destination: '10.0.0.2' } }, node_name: 'c/n' }));
    const first = await started(config, new MemorySink(true));
    const summary = await send(first, gzip(msgpackBody(lines.map((l) => ({ log: l })))), config);
    expect(summary.flows).toBe(200);
    await killed(first, config);
    const sink = new MemorySink();
    const second = await started(config, sink);
    await first.close(0);
    await second.flush();
    await second.close();
    const aggregates = sink.rows('flows');
    expect(sum(aggregates, 'FlowCount')).toBe(200);
    expect(sum(aggregates, 'AggregatedFlows')).toBe(200);
    const coverage = sink.rows('coverage');
    expect(sum(coverage, 'FlowsSeen')).toBe(200);
    expect(sum(coverage, 'FlowsKept')).toBe(200);
    expect(sum(coverage, 'FlowsAggregated')).toBe(200);
  });

  it('what was counted before a checkpoint is not counted again after a crash; what came after it is, once', async () => {
    const config = spooled({ coverage: { windowSeconds: 1, nodeName: 'node-a' } });
    const flows = (prefix: string, n: number) => gzip(msgpackBody(Array.from({ length: n }, (_, i) => ({ log: JSON.stringify({ flow: { uuid: `${prefix}-${i}`, verdict: 'DROPPED', time: '2026-01-01T00:00:00Z' } }) }))));
    const first = await started(config, new MemorySink(true));
    await send(first, flows('early', 30), config);
    // A window closes (a checkpoint): the 30 are counted for good.
    await new Promise((r) => setTimeout(r, 2300));
    await send(first, flows('late', 20), config);
    await killed(first, config);
    const sink = new MemorySink();
    const second = await started(config, sink);
    await first.close(0);
    await second.flush();
    await second.close();
    expect(new Set(uuids(sink)).size).toBe(50);
    expect(sum(sink.rows('coverage'), 'FlowsSeen')).toBe(50);
    // Rows made again name the window that counted them, also those counted before the checkpoint.
    const windows = new Map(sink.rows('flows').map((r) => [String(r.Uuid).split('-')[0], `${r.RunId}/${r.CoverageWindow}`]));
    const covered = new Set(sink.rows('coverage').filter((r) => Number(r.FlowsSeen) > 0).map((r) => `${r.RunId}/${r.WindowSequence}`));
    expect(covered.has(windows.get('early')!)).toBe(true);
    expect(covered.has(windows.get('late')!)).toBe(true);
  });
});
