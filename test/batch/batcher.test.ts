import { describe, expect, it } from 'vitest';
import { Batcher, type Batch, type EncodedChunk } from '../../src/batch/index.js';
import { RetryPolicy } from '../../src/retry-policy.js';
import type { Sink } from '../../src/sink/index.js';
import type { DeliveryToken } from '../../src/spool/index.js';
import { LinesWriter } from '../../src/sink/lines-writer.js';

function chunk(prefix: string, n: number): EncodedChunk {
  const w = new LinesWriter<{ TimeGenerated: string; id: string }>((r) => JSON.stringify(r));
  for (let i = 0; i < n; i++) w.add({ TimeGenerated: '2026-01-01T00:00:00Z', id: `${prefix}-${i}` });
  return w.finish()!;
}

class Token implements DeliveryToken {
  pendingLines = 0;
  acked = 0;
  ack(rows: number): void {
    this.acked += rows;
  }
}

function sink(fail = 0): Sink & { batches: Batch[]; ids: string[] } {
  let failures = fail;
  const s = {
    name: 'test',
    maxBatchBytes: 1 << 20,
    batches: [] as Batch[],
    ids: [] as string[],
    writer: () => new LinesWriter((r) => JSON.stringify(r)),
    async write(b: Batch) {
      if (failures-- > 0) throw new Error('not now');
      s.batches.push(b);
      for (const c of b.chunks) for (const l of c.data.toString().split('\n').filter(Boolean)) s.ids.push((JSON.parse(l) as { id: string }).id);
    },
    async close() {},
  };
  return s;
}

const noHooks = { written: () => undefined, failed: () => undefined };

describe('batcher: encoded rows into batches, tokens acknowledged when the sink has them', () => {
  it('cuts batches at maxRows, across requests, and acknowledges each token with the rows it had in each', async () => {
    const s = sink();
    const b = new Batcher(s, { maxRows: 4, maxAgeMs: 10_000, maxInFlight: 2 }, new RetryPolicy(10, 10), noHooks);
    const t1 = new Token();
    const t2 = new Token();
    b.add('flows', chunk('a', 3), t1);
    b.add('flows', chunk('b', 3), t2);
    expect(t1.acked + t2.acked).toBe(0);
    await b.flush();
    expect(s.batches.map((x) => x.rows)).toEqual([4, 2]);
    expect(s.ids).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'b-2']);
    expect([t1.acked, t2.acked]).toEqual([3, 3]);
    expect(b.pendingRows).toBe(0);
    expect(b.pendingBytes).toBe(0);
    b.stop();
  });

  it('a batch the sink refuses is written again, and its tokens are acknowledged only then', async () => {
    const s = sink(2);
    const failed: number[] = [];
    const b = new Batcher(s, { maxRows: 10, maxAgeMs: 10_000, maxInFlight: 1 }, new RetryPolicy(10, 20), { written: () => undefined, failed: (_t, rows) => failed.push(rows) });
    const t = new Token();
    b.add('events', chunk('e', 5), t);
    const done = b.flush();
    await new Promise((r) => setTimeout(r, 5));
    expect(t.acked).toBe(0);
    expect(b.pendingRows).toBe(5);
    await done;
    expect(failed).toEqual([5, 5]);
    expect(t.acked).toBe(5);
    expect(s.ids).toEqual(['e-0', 'e-1', 'e-2', 'e-3', 'e-4']);
    b.stop();
  });
});
