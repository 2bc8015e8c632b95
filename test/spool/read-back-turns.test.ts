/**
 * A parked request is read back from the spool (decoded again) only once there is room for its
 * rows, in the same line of decode turns as the receiver's (limits.maxInflightBytes), and its
 * decoded records are let go while it waits: during an ADX outage a decoded parked body was held for
 * the whole outage beside the receiver's, and two crafted 8 MiB bodies took the heap past its limit.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { Pipeline } from '../../src/pipeline.js';
import { decodeBody, InflightBytes } from '../../src/receive/index.js';
import type { TableKey } from '../../src/schema/index.js';
import { criRecord, gzip, msgpackBody } from '../support/fluent-bit-bodies.js';
import { FlowGenerator } from '../support/generator.js';
import { RowSink } from '../support/row-sink.js';

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

class SwitchableSink extends RowSink {
  readonly name = 'memory';
  readonly rows: Record<string, unknown>[] = [];
  down = true;
  protected async take(table: TableKey, rows: Record<string, unknown>[]): Promise<void> {
    await Promise.resolve();
    if (this.down) throw new Error('ADX is down');
    if (table === 'flows') this.rows.push(...rows);
  }
}

describe('requests read back from the spool', () => {
  it('are decoded only with room for their rows, in the receiver\'s turns, every turn given back', async () => {
    const config = configSchema.parse({
      spool: { directory: mkdtempSync(join(tmpdir(), 'hubble-adx-turns-')) },
      batch: { maxAgeMs: 20, maxRows: 50, maxPendingRows: 100 },
      retry: { minDelayMs: 10, maxDelayMs: 40 },
      coverage: { windowSeconds: 3600, nodeName: 'node-a' },
    });
    const turns = new InflightBytes(config.limits.maxInflightRequests, config.limits.maxInflightBytes, config.limits.maxWaitingBytes);
    const asked: number[] = [];
    let held = 0;
    let mostHeld = 0;
    const sink = new SwitchableSink();
    const p = new Pipeline(config, createMetrics({ defaultMetrics: false }), sink, quiet, {
      decodeTurn: async (bytes) => {
        asked.push(bytes);
        const release = await turns.wait(bytes);
        mostHeld = Math.max(mostHeld, ++held);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          held--;
          release();
        };
      },
    });
    await p.recover();
    const gen = new FlowGenerator(3);
    const lines = Array.from({ length: 6 }, () => gen.lines(60));
    const flows = lines.flat().filter((l) => l.startsWith('{"flow"')).length;
    const bodies = lines.map((ls) => gzip(msgpackBody(ls.map((l) => criRecord(l)))));
    let deferred = 0;
    for (const body of bodies) {
      const d = await decodeBody(body, 'msgpack', 'gzip', config.limits, config.server.jsonDateKey);
      if (!d.ok) throw new Error(d.error.message);
      if ((await p.ingest({ format: 'msgpack', encoding: 'gzip', body, decoded: d.decoded })).deferred) deferred++;
    }
    expect(deferred).toBeGreaterThan(0);
    // ADX is down and the rows in memory are at their bound: nothing parked is read back meanwhile.
    await new Promise((r) => setTimeout(r, 300));
    expect(asked).toEqual([]);
    sink.down = false;
    await p.flush();
    await p.close();
    expect(asked.length).toBeGreaterThanOrEqual(deferred);
    for (const bytes of asked) expect(bytes).toBeGreaterThan(1000);
    expect(held).toBe(0);
    expect(mostHeld).toBe(1);
    expect(flows).toBeGreaterThan(100);
    expect(new Set(sink.rows.map((r) => r.Uuid)).size).toBe(flows);
  });
});
