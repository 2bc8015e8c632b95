/**
 * A checkpoint left in the spool by an earlier run holds rows counted nowhere else (its aggregates,
 * its coverage rows): reading it back is tried again when the read fails, as a request's is.
 */
import { describe, expect, it } from 'vitest';
import { RecordQueue, type QueueDeps } from '../../src/runtime/record-queue.js';
import { Receipt } from '../../src/spool/index.js';

const rows = { coverage: [{ RunId: 'r1', WindowSequence: 3 }] };

/** The record queue with only what a spooled checkpoint touches: the spool's read, the encoder and the batcher. */
function queueWith(read: () => Promise<unknown>) {
  const added: { table: string; rows: number }[] = [];
  const deps = {
    spool: { readCheckpointRows: read },
    processor: { encodeRows: (table: string, list: unknown[]) => ({ chunks: [{ table, chunk: { rows: list.length } }] }) },
    batcher: { add: (table: string, chunk: { rows: number }) => added.push({ table, rows: chunk.rows }) },
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  } as unknown as QueueDeps;
  const queue = new RecordQueue(deps, { counted: { position: 0, item: 0 }, aggregated: { position: 0, item: 0 }, given: [] });
  return { queue, added };
}

describe('a spooled checkpoint read back', () => {
  it('a read that fails (EIO) is tried again: its rows go on, and the record is made only then', async () => {
    let reads = 0;
    const { queue, added } = queueWith(async () => {
      if (reads++ === 0) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      return rows;
    });
    const receipt = new Receipt(5);
    queue.push({ kind: 'checkpoint', receipt });
    await queue.drained();
    expect(reads).toBe(2);
    expect(added).toEqual([{ table: 'coverage', rows: 1 }]);
    expect(receipt.isMade).toBe(true);
  });

  it('stopped while its read keeps failing: not made, it stays for the next start', async () => {
    const { queue, added } = queueWith(() => Promise.reject(Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' })));
    const receipt = new Receipt(6);
    queue.push({ kind: 'checkpoint', receipt });
    queue.kick();
    await new Promise((r) => setTimeout(r, 100));
    await queue.stop();
    expect(added).toEqual([]);
    expect(receipt.isMade).toBe(false);
  });

  it('a record that is gone or does not decode is let go: there is nothing to try again', async () => {
    const { queue, added } = queueWith(() => Promise.resolve(null));
    const receipt = new Receipt(7);
    queue.push({ kind: 'checkpoint', receipt });
    await queue.drained();
    expect(added).toEqual([]);
    expect(receipt.isMade).toBe(true);
  });
});
