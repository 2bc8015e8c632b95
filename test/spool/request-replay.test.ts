import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { criRecord, gzip, msgpackBody } from '../../bench/fluent-bit-bodies.js';
import { FlowGenerator } from '../../bench/generator.js';
import { configSchema } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { Pipeline } from '../../src/pipeline.js';
import { decodeBody } from '../../src/receive/index.js';
import type { RowOfTable, TableKey } from '../../src/schema/index.js';
import type { Sink } from '../../src/sink/index.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Keeps what it is given, or refuses everything (ADX down). */
class MemorySink implements Sink {
  readonly name = 'memory';
  readonly tables = new Map<TableKey, Record<string, unknown>[]>();
  constructor(private readonly down = false) {}
  async write<K extends TableKey>(table: K, rows: RowOfTable[K][]): Promise<void> {
    if (this.down) throw new Error('ADX is down');
    this.tables.set(table, [...(this.tables.get(table) ?? []), ...(rows as Record<string, unknown>[])]);
  }
  async close(): Promise<void> {}
}

describe('spooled requests', () => {
  it('are made into the same rows again after a restart: flows, events, dead letters and identities', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-replay-'));
    const config = configSchema.parse({ spool: { directory: dir }, batch: { maxAgeMs: 20 } });
    const lines = [...new FlowGenerator(7).lines(300), '{"flow":{"uuid":"broken"', '{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"3"},"node_name":"c/n","time":"2026-01-01T00:00:00Z"}'];
    const body = gzip(msgpackBody(lines.map((l) => criRecord(l))));
    const decoded = await decodeBody(body, 'msgpack', 'gzip', config.limits, config.server.jsonDateKey);
    if (!decoded.ok) throw new Error(decoded.error.message);

    // First run: the request is acknowledged (spooled), ADX is down, the process stops.
    const before = new MemorySink();
    const first = new Pipeline(config, createMetrics({ defaultMetrics: false }), new MemorySink(true), quiet);
    // The rows as they would have been written: the same input through a memory-only pipeline.
    const reference = new Pipeline(configSchema.parse({ spool: { enabled: false } }), createMetrics({ defaultMetrics: false }), before, quiet);
    const summary = await first.ingest(decoded.decoded, 'msgpack', decoded.inflatedBytes, { body, encoding: 'gzip' });
    await reference.ingest(decoded.decoded, 'msgpack', decoded.inflatedBytes);
    await reference.close();
    expect(await first.close(50)).toBe(false);

    // Second run on the same spool: replayed from the request itself.
    const after = new MemorySink();
    const second = new Pipeline(config, createMetrics({ defaultMetrics: false }), after, quiet);
    const replayed = await second.recover();
    await second.close();
    const uuids = (s: MemorySink) => (s.tables.get('flows') ?? []).map((r) => r.Uuid);
    expect(uuids(after)).toEqual(uuids(before));
    expect(uuids(after)).toHaveLength(summary.flows);
    expect(after.tables.get('flows')).toEqual(before.tables.get('flows'));
    expect(after.tables.get('events')).toEqual(before.tables.get('events'));
    expect(after.tables.get('deadLetters')?.map((r) => [r.Reason, r.RawData])).toEqual([['invalid_json', '{"flow":{"uuid":"broken"']]);
    const identities = (s: MemorySink) => (s.tables.get('identities') ?? []).map(({ TimeGenerated: _t, ...r }) => r);
    expect(identities(after)).toEqual(identities(before));
    expect(replayed).toBe([...after.tables.values()].reduce((n, rows) => n + rows.length, 0));

    // Third run: everything was delivered, nothing is left.
    const third = new Pipeline(config, createMetrics({ defaultMetrics: false }), new MemorySink(), quiet);
    expect(await third.recover()).toBe(0);
    await third.close();
  });
});
