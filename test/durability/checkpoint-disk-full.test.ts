/**
 * A checkpoint that cannot be written (a full disk) waits to be written with the next, and records
 * leave the spool only once it is on disk. Nothing more is made into rows meanwhile: each slice
 * would add to what that checkpoint must hold, until it no longer fits the room the disk has when
 * it frees up, and it would never be written (the crash torture met that: two checkpoints of 9 MB
 * in a 24 MiB spool, and every later one refused).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TableKey } from '../../src/schema/index.js';
import { Spool } from '../../src/spool/index.js';
import { startService, type Running } from '../helpers/service.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { RowSink } from '../support/row-sink.js';

class CountingSink extends RowSink {
  readonly name = 'memory';
  readonly uuids: string[] = [];
  protected async take(table: TableKey, rows: Record<string, unknown>[]): Promise<void> {
    await Promise.resolve();
    if (table === 'flows') for (const r of rows) this.uuids.push(String(r.Uuid));
  }
}

function flowsBody(prefix: string, n: number): Buffer {
  return jsonLinesBody(
    Array.from({ length: n }, (_, i) => {
      const flow = { time: '2026-11-20T08:00:01Z', uuid: `${prefix}-${i}`, verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', IP: { source: '10.1.2.3', destination: '10.200.0.1' } };
      return { log: JSON.stringify({ flow, node_name: 'node-a', time: flow.time }) };
    }),
  );
}
const NDJSON = { 'content-type': 'application/x-ndjson' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let svc: Running | null = null;
afterEach(async () => {
  vi.restoreAllMocks();
  await svc?.stop();
  svc = null;
});

describe('a checkpoint the disk has no room for', () => {
  it('makes nothing more into rows until it is written; then every request is made and delivered once', async () => {
    const sink = new CountingSink();
    svc = await startService({ retry: { minDelayMs: 50, maxDelayMs: 200 }, coverage: { nodeName: 'node-a' } }, sink);
    const full = vi.spyOn(Spool.prototype, 'appendCheckpoint').mockRejectedValue(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    // The first request is made and counted; the checkpoint that counts it fails.
    expect((await svc.post(flowsBody('r0', 20), NDJSON)).status).toBe(200);
    for (const until = Date.now() + 5000; full.mock.calls.length === 0 && Date.now() < until; ) await sleep(20);
    await sleep(100);
    expect(full).toHaveBeenCalled();
    // The rest wait in the spool.
    for (let i = 1; i < 6; i++) expect((await svc.post(flowsBody(`r${i}`, 20), NDJSON)).status).toBe(200);
    await sleep(1500);
    expect(await svc.metric('hubble_adx_spool_parked_requests')).toBe(5);
    expect(sink.uuids).toEqual([]);
    full.mockRestore();
    await svc.service.pipeline.flush();
    expect(new Set(sink.uuids).size).toBe(120);
    expect(sink.uuids).toHaveLength(120);
  });
});
