import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { criRecord, gzip, msgpackBody } from '../support/fluent-bit-bodies.js';
import { FlowGenerator } from '../support/generator.js';
import { configSchema } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { Pipeline } from '../../src/pipeline.js';
import { decodeBody } from '../../src/receive/index.js';
import { Spool } from '../../src/spool/index.js';
import type { TableKey } from '../../src/schema/index.js';
import { RowSink } from '../support/row-sink.js';
import type { Sink } from '../../src/sink/index.js';
import { metricValue } from '../helpers/service.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Keeps what it is given, or refuses everything (ADX down). */
class MemorySink extends RowSink {
  readonly name = 'memory';
  readonly tables = new Map<TableKey, Record<string, unknown>[]>();
  constructor(private readonly down = false) {
    super();
  }
  protected async take(table: TableKey, rows: Record<string, unknown>[]): Promise<void> {
    if (this.down) throw new Error('ADX is down');
    this.tables.set(table, [...(this.tables.get(table) ?? []), ...rows]);
  }
}

/** A configuration with its own fresh spool directory. */
function spooled() {
  return configSchema.parse({ spool: { directory: mkdtempSync(join(tmpdir(), 'hubble-adx-replay-')) }, batch: { maxAgeMs: 20 } });
}

const pipeline = (config: ReturnType<typeof spooled>, sink: Sink, metrics = createMetrics({ defaultMetrics: false })) => new Pipeline(config, metrics, sink, quiet);

/** As the receiver does: decode a msgpack+gzip body and hand it on with the body as received. */
async function send(p: Pipeline, body: Buffer, config: ReturnType<typeof spooled>) {
  const d = await decodeBody(body, 'msgpack', 'gzip', config.limits, config.server.jsonDateKey);
  if (!d.ok) throw new Error(d.error.message);
  return p.ingest(d.decoded, 'msgpack', { body, encoding: 'gzip' });
}

describe('spooled requests', () => {
  it('are made into the same rows again after a restart: flows, events, dead letters and identities', async () => {
    const config = spooled();
    const lines = [...new FlowGenerator(7).lines(300), '{"flow":{"uuid":"broken"', '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"},"node_name":"c/n","time":"2026-01-01T00:00:00Z"}'];
    const body = gzip(msgpackBody(lines.map((l) => criRecord(l))));

    // First run: the request is acknowledged (spooled), ADX is down, the process stops.
    const first = pipeline(config, new MemorySink(true));
    const summary = await send(first, body, config);
    expect(await first.close(50)).toBe(false);
    // The rows as they would have been written: the same input through a memory-only pipeline.
    const before = new MemorySink();
    const reference = pipeline(configSchema.parse({ spool: { enabled: false } }), before);
    await send(reference, body, config);
    await reference.close();

    // Second run on the same spool: replayed from the request itself.
    const after = new MemorySink();
    const metrics = createMetrics({ defaultMetrics: false });
    const secondStarted = Date.now();
    const second = pipeline(config, after, metrics);
    const replayed = await second.recover();
    await second.close();
    // Counted when the request arrived, not again when its rows are made again.
    const text = await metrics.registry.metrics();
    expect(metricValue(text, 'hubble_adx_hubble_lost_events_total', { source: 'HUBBLE_RING_BUFFER', node: 'n' })).toBe(0);
    expect(metricValue(text, 'hubble_adx_dead_letters_total', { stage: 'extract', reason: 'invalid_json' })).toBe(0);
    expect(metricValue(text, 'hubble_adx_spool_replayed_rows_total')).toBe(replayed);
    const uuids = (s: MemorySink) => (s.tables.get('flows') ?? []).map((r) => r.Uuid);
    expect(uuids(after)).toEqual(uuids(before));
    expect(uuids(after)).toHaveLength(summary.flows);
    expect(after.tables.get('flows')).toEqual(before.tables.get('flows'));
    expect(after.tables.get('events')).toEqual(before.tables.get('events'));
    expect(after.tables.get('deadLetters')?.map((r) => [r.Reason, r.RawData])).toEqual([['invalid_json', '{"flow":{"uuid":"broken"']]);
    const identities = (s: MemorySink) => (s.tables.get('identities') ?? []).map(({ TimeGenerated: _t, ...r }) => r);
    expect(identities(after)).toEqual(identities(before));
    // Everything the second run wrote was replayed, but for its own coverage row.
    const own = (after.tables.get('coverage') ?? []).filter((r) => Date.parse(r.WindowStart as string) >= secondStarted).length;
    expect(own).toBe(1);
    expect(replayed).toBe([...after.tables.values()].reduce((n, rows) => n + rows.length, 0) - own);

    // Third run: everything was delivered, nothing is left.
    const third = pipeline(config, new MemorySink());
    expect(await third.recover()).toBe(0);
    await third.close();
  });

  it('a line whose CRI pieces came in two requests is joined again on replay: the first request is kept until the line is delivered', async () => {
    const config = spooled();
    const line = JSON.stringify({ flow: { uuid: 'split-across-requests', verdict: 'DROPPED', time: '2026-01-01T00:00:00Z' }, node_name: 'c/n' });
    const stream = { kubernetes: { namespace_name: 'kube-system', pod_name: 'cilium-x', container_name: 'cilium-agent' }, stream: 'stdout' };
    const requestA = gzip(msgpackBody([{ log: line.slice(0, 25), logtag: 'P', ...stream }]));
    const requestB = gzip(msgpackBody([{ log: line.slice(25), logtag: 'F', ...stream }]));

    // First run: A brings the first piece (no row yet), B the last; ADX is down; the process stops.
    const first = pipeline(config, new MemorySink(true));
    expect((await send(first, requestA, config)).flows).toBe(0);
    expect((await send(first, requestB, config)).flows).toBe(1);
    await first.close(50);

    // Second run: both requests are replayed, in order, and the line is whole again.
    const delivered = new MemorySink();
    const second = pipeline(config, delivered);
    await second.recover();
    await second.close();
    expect(delivered.tables.get('flows')?.map((r) => r.Uuid)).toEqual(['split-across-requests']);
    expect(delivered.tables.get('deadLetters')).toBeUndefined();

    // The line was delivered: both requests are let go, nothing is replayed a third time.
    const third = pipeline(config, new MemorySink());
    expect(await third.recover()).toBe(0);
    await third.close();
  });

  it('a request whose pieces wait for a later line is not let go before that line is delivered', async () => {
    const config = spooled();
    const dir = config.spool.directory;
    const line = JSON.stringify({ flow: { uuid: 'late-final-piece', verdict: 'FORWARDED', time: '2026-01-01T00:00:00Z' } });
    const stream = { kubernetes: { namespace_name: 'kube-system', pod_name: 'cilium-y', container_name: 'cilium-agent' } };
    const other = JSON.stringify({ flow: { uuid: 'whole', verdict: 'FORWARDED', time: '2026-01-01T00:00:00Z' } });
    const body = gzip(msgpackBody([{ log: other, ...stream, kubernetes: { ...stream.kubernetes, pod_name: 'cilium-z' } }, { log: line.slice(0, 20), logtag: 'P', ...stream }]));
    // ADX takes the request's one row, yet the request stays: its piece is part of an unfinished line.
    const sink = new MemorySink();
    const p = pipeline(config, sink);
    await send(p, body, config);
    await p.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(sink.tables.get('flows')?.map((r) => r.Uuid)).toEqual(['whole']);
    const acked = () => readdirSync(dir).filter((f) => f.endsWith('.ack')).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
    expect(acked()).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.wal'))).toHaveLength(1);
    // A clean stop reports the unfinished line as a dead letter; once that is delivered, all is let go.
    await p.close();
    expect(sink.tables.get('deadLetters')?.map((r) => [r.Reason, r.RawData])).toEqual([['partial_incomplete', line.slice(0, 20)]]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.wal'))).toEqual([]);
  });

  it('rows spooled as rows (aggregates, expired lines) stay in the spool until every one of them is delivered, also when they span batches', async () => {
    const config = configSchema.parse({ spool: { directory: mkdtempSync(join(tmpdir(), 'hubble-adx-replay-')) }, batch: { maxAgeMs: 20, maxRows: 2, maxInFlight: 1 } });
    const rows = ['r-0', 'r-1', 'r-2'].map((Uuid) => ({ TimeGenerated: '2026-01-01T00:00:00Z', Uuid, Verdict: 'FORWARDED' }));
    const earlier = new Spool(config.spool, { fsyncSeconds: () => undefined });
    await earlier.appendRows('flows', rows);
    // A sink that takes the first batch (two rows) and then refuses: the third row is not delivered.
    let taken = 0;
    const stingy = new (class extends MemorySink {
      protected override async take(table: TableKey, got: Record<string, unknown>[]): Promise<void> {
        if (table === 'flows' && taken > 0) throw new Error('ADX is down');
        if (table === 'flows') taken += got.length;
        await super.take(table, got);
      }
    })();
    const second = pipeline(config, stingy);
    await second.recover();
    for (let i = 0; i < 100 && taken === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(taken).toBe(2);
    await second.close(50);
    const replayed: string[] = [];
    for await (const r of new Spool(config.spool, { fsyncSeconds: () => undefined }).replay(() => undefined)) {
      if (r.kind === 'rows') for (const row of r.rows) replayed.push((row as { Uuid: string }).Uuid);
    }
    expect(replayed).toEqual(['r-0', 'r-1', 'r-2']);
  });
});
