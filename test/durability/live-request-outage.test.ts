/**
 * During an ADX outage a request made into rows at once (the queue idle, room for a slice) whose
 * rows need more than one slice fills the rows in memory with its first: the rest waits for room,
 * which comes back when ADX does. It is in the spool already, so it is answered then (200
 * deferred), lets go of its records and its sender's decode turn, and is read back from the spool
 * for the rest once there is room. Fluent Bit is never left without an answer for the outage, and
 * every flow still arrives once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TableKey } from '../../src/schema/index.js';
import { startService, type Running } from '../helpers/service.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { RowSink } from '../support/row-sink.js';

class OutageSink extends RowSink {
  readonly name = 'memory';
  down = true;
  readonly uuids: string[] = [];
  protected async take(table: TableKey, rows: Record<string, unknown>[]): Promise<void> {
    await Promise.resolve();
    if (this.down) throw new Error('ADX is down');
    if (table === 'flows') for (const r of rows) this.uuids.push(String(r.Uuid));
  }
}

const K8S = { namespace_name: 'kube-system', pod_name: 'cilium-x', container_name: 'cilium-agent' };
function flowsBody(prefix: string, n: number): Buffer {
  return jsonLinesBody(
    Array.from({ length: n }, (_, i) => {
      const flow = { time: '2026-11-20T08:00:01Z', uuid: `${prefix}-${i}`, verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', IP: { source: '10.1.2.3', destination: '10.200.0.1' } };
      return { log: JSON.stringify({ flow, node_name: 'node-a', time: flow.time }), stream: 'stdout', kubernetes: K8S };
    }),
  );
}

const answeredWithin = (p: Promise<Response>, ms: number) =>
  Promise.race([p.then(async (r) => ({ status: r.status, body: (await r.json()) as { deferred?: boolean } })), new Promise<null>((r) => setTimeout(() => r(null), ms))]);
const NDJSON = { 'content-type': 'application/x-ndjson' };

let svc: Running | null = null;
afterEach(async () => {
  await svc?.stop();
  svc = null;
});

describe('a request whose rows need a second slice, while ADX is down', () => {
  it('is answered 200 deferred at once, and every flow of it arrives once ADX is back', async () => {
    const sink = new OutageSink();
    svc = await startService({ batch: { maxPendingRows: 1000 }, retry: { minDelayMs: 50, maxDelayMs: 200 }, coverage: { nodeName: 'node-a' } }, sink);
    const answer = await answeredWithin(svc.post(flowsBody('big', 2500), NDJSON), 3000);
    expect(answer).toEqual({ status: 200, body: expect.objectContaining({ deferred: true }) });
    sink.down = false;
    await svc.service.pipeline.flush();
    expect(new Set(sink.uuids).size).toBe(2500);
  });

  it('leaves the receiver taking requests (200 deferred) with limits.maxInflightRequests 1', async () => {
    const sink = new OutageSink();
    svc = await startService(
      { batch: { maxPendingRows: 1000 }, retry: { minDelayMs: 50, maxDelayMs: 200 }, limits: { maxInflightRequests: 1, maxWaitingBytes: 1024 * 1024 }, coverage: { nodeName: 'node-a' } },
      sink,
    );
    const big = answeredWithin(svc.post(flowsBody('big', 2500), NDJSON), 3000);
    await new Promise((r) => setTimeout(r, 300));
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await answeredWithin(svc.post(flowsBody(`small${i}`, 5), NDJSON), 2000))?.status ?? null);
    expect((await big)?.status).toBe(200);
    expect(answers).toEqual([200, 200, 200]);
    sink.down = false;
    await svc.service.pipeline.flush();
    expect(new Set(sink.uuids).size).toBe(2515);
  });
});
