import { describe, expect, it } from 'vitest';
import { Batcher, type Batch, type Delivery, type EncodedChunk } from '../../src/batch/index.js';
import { LinesWriter } from '../../src/sink/lines-writer.js';
import { Receipt } from '../../src/spool/index.js';

function chunk(prefix: string, n: number): EncodedChunk {
  const w = new LinesWriter<{ TimeGenerated: string; id: string }>((r) => JSON.stringify(r));
  for (let i = 0; i < n; i++) w.add({ TimeGenerated: '2026-01-01T00:00:00Z', id: `${prefix}-${i}` });
  return w.finish()!;
}

/** A receipt that remembers the slices handed back to it. */
class Told extends Receipt {
  slices: number[] = [];
  constructor() {
    super(-1);
  }
  override delivered(rows: number): void {
    this.slices.push(rows);
    super.delivered(rows);
  }
}

function delivery(opts: { stopped?: boolean } = {}): Delivery & { batches: Batch[]; ids: string[]; release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const d = {
    maxBatchBytes: 1 << 20,
    batches: [] as Batch[],
    ids: [] as string[],
    release,
    async deliver(b: Batch) {
      if (opts.stopped) {
        await gate;
        throw new Error('delivery stopped');
      }
      d.batches.push(b);
      for (const c of b.chunks) for (const l of c.data.toString().split('\n').filter(Boolean)) d.ids.push((JSON.parse(l) as { id: string }).id);
      return { setAside: 0 };
    },
  };
  return d;
}

describe('batcher: encoded rows into batches, each slice handed back to its receipt once delivered', () => {
  it('cuts batches at maxRows, across requests, and tells each receipt the rows it had in each batch', async () => {
    const d = delivery();
    const b = new Batcher(d, { maxRows: 4, maxAgeMs: 10_000, maxInFlight: 2 }, () => undefined);
    const r1 = new Told();
    const r2 = new Told();
    r1.expect(3);
    r2.expect(3);
    b.add('flows', chunk('a', 3), r1);
    b.add('flows', chunk('b', 3), r2);
    expect(r1.slices.length + r2.slices.length).toBe(0);
    await b.flush();
    expect(d.batches.map((x) => x.rows)).toEqual([4, 2]);
    expect(d.ids).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'b-2']);
    // b's rows were cut across two batches: two slices, each told when its batch was delivered.
    expect(r1.slices).toEqual([3]);
    expect(r2.slices).toEqual([1, 2]);
    r1.made();
    r2.made();
    expect(r1.settled && r2.settled).toBe(true);
    expect(b.pendingRows).toBe(0);
    expect(b.pendingBytes).toBe(0);
    b.stop();
  });

  it('a batch whose delivery stops (shutdown) stays pending and tells its receipt nothing', async () => {
    const d = delivery({ stopped: true });
    const b = new Batcher(d, { maxRows: 10, maxAgeMs: 10_000, maxInFlight: 1 }, () => undefined);
    const r = new Told();
    r.expect(5);
    b.add('events', chunk('e', 5), r);
    void b.flush();
    d.release();
    await new Promise((res) => setTimeout(res, 10));
    expect(r.slices).toEqual([]);
    expect(b.pendingRows).toBe(5);
    r.made();
    expect(r.settled).toBe(false);
    b.stop();
  });
});
