/**
 * A checkpoint that could not be written (a full disk) is carried into the next one. What it said
 * must still be said as of when it was taken: a line it gave up was given up at its mark, not at
 * the later mark of the checkpoint that finally reached the disk.
 */
import { describe, expect, it } from 'vitest';
import { Checkpoints, type CheckpointDeps, type PipelineState } from '../../src/runtime/checkpoints.js';
import { emptyCounts } from '../../src/process/counts.js';
import { Receipt, type Mark } from '../../src/spool/index.js';

describe('a checkpoint carried into the next after a failed write', () => {
  it('the lines it gave up keep its mark', async () => {
    let queueAt: Mark = { position: 10, item: 0 };
    const source = new Receipt(4);
    const line = { key: 'pod-a/stdout', line: { sources: [source], holds: [] } };
    let takes = 0;
    const written: PipelineState[] = [];
    let writes = 0;
    const deps = {
      mark: () => queueAt,
      foldMark: () => queueAt,
      processor: {
        checkpoint: () => ({ chunks: [], rowObjects: null, counts: emptyCounts(), given: takes++ === 0 ? [line] : [] }),
        oldestPartialAt: null,
      },
      ledger: { countingWindow: null, liveOpen: true, liveEnd: Number.POSITIVE_INFINITY, count: () => undefined, snapshot: () => ({ windows: [], counting: null, closed: [] }), trim: () => undefined },
      upstream: { snapshot: () => ({}) },
      spool: {
        oldestPosition: 0,
        appendCheckpoint: async (head: { state: PipelineState }) => {
          if (writes++ === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          written.push(head.state);
          return new Receipt(20);
        },
      },
      batcher: { add: () => undefined },
      run: { runId: 'run-a', nodeName: 'n' },
      log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
      publish: () => undefined,
      coverageWindowClosed: () => undefined,
      expiryAllowed: () => true,
      spoolPressed: () => false,
      oldestPendingSeconds: () => 0,
    } as unknown as CheckpointDeps;
    const checkpoints = new Checkpoints(deps, { aggregationWindowMs: null, partialMaxAgeMs: 60_000, intervalMs: 250 }, null, { position: 0, item: 0 }, Date.now());

    await expect(checkpoints.take(Date.now())).rejects.toThrow(/ENOSPC/);
    // Records after the line was given up are made into rows before the next checkpoint is written.
    queueAt = { position: 15, item: 3 };
    await checkpoints.take(Date.now());

    expect(written).toHaveLength(1);
    expect(written[0]!.given).toEqual([{ key: 'pod-a/stdout', sources: [4], mark: { position: 10, item: 0 } }]);
  });
});
