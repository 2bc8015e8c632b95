import { describe, expect, it } from 'vitest';
import { CoverageLedger, type RunInfo } from '../../src/coverage/index.js';
import { emptyCounts } from '../../src/process/counts.js';

const run: RunInfo = {
  runId: 'run-a',
  kind: 'serve',
  startedAt: 1_795_161_600_000,
  cluster: 'c',
  nodeName: 'n',
  version: 'test',
  configHash: 'h',
  previousRunEnd: 'none',
  previousLastAlive: null,
};
const at = (position: number) => ({ position, item: 0 });

/** A ledger whose live run counted windows 0..n-1, window i from spool position 100*i. */
function ledgerWithWindows(n: number): CoverageLedger {
  const ledger = new CoverageLedger(60, run, null);
  ledger.crossRun(run, at(0));
  for (let i = 0; i < n; i++) {
    ledger.count({ ...emptyCounts(), records: 1 });
    ledger.closeLive(run.startedAt + (i + 1) * 60_000, at(100 * (i + 1)), false, 0);
  }
  return ledger;
}

describe('coverage ledger: which window counted a record', () => {
  it('a record made into rows again is stamped with the closed window whose range holds it', () => {
    const ledger = ledgerWithWindows(3);
    expect(ledger.windowAt(at(0))).toEqual({ runId: 'run-a', seq: 0 });
    expect(ledger.windowAt(at(150))).toEqual({ runId: 'run-a', seq: 1 });
    expect(ledger.windowAt(at(299))).toEqual({ runId: 'run-a', seq: 2 });
    // Past the last close: the open window.
    expect(ledger.windowAt(at(300))).toEqual({ runId: 'run-a', seq: 3 });
  });

  it('a live window that counted only requests never spooled before the backlog reached its run still counts from the run\'s start', () => {
    const ledger = new CoverageLedger(60, run, null);
    // Agent log lines alone, answered while an earlier run's backlog was made into rows.
    ledger.liveWindow.add({ ...emptyCounts(), records: 3 });
    ledger.crossRun(run, at(600));
    ledger.count({ ...emptyCounts(), records: 1 });
    ledger.closeLive(run.startedAt + 60_000, at(700), false, 0);
    expect(ledger.windowAt(at(600))).toEqual({ runId: 'run-a', seq: 0 });
    expect(ledger.windowAt(at(650))).toEqual({ runId: 'run-a', seq: 0 });
    expect(ledger.windowAt(at(700))).toEqual({ runId: 'run-a', seq: 1 });
  });

  it('the outcome settings of the run that counted a record are found after a restart, also once that run\'s start has left the spool', () => {
    const a: RunInfo = { ...run, runId: 'run-a', outcomes: { sampling: { allowedOneIn: 1 } } };
    const b: RunInfo = { ...run, runId: 'run-b', startedAt: run.startedAt + 60_000, outcomes: { sampling: { allowedOneIn: 10 } } };
    const ledger = new CoverageLedger(60, b, null);
    ledger.crossRun(a, at(0));
    ledger.count({ ...emptyCounts(), records: 1 });
    ledger.crossRun(b, at(100));
    const restored = new CoverageLedger(60, { ...run, runId: 'run-c' }, structuredClone(ledger.snapshot()));
    expect(restored.outcomesAt(at(50))).toEqual(a.outcomes);
    expect(restored.outcomesAt(at(150))).toEqual(b.outcomes);
    // Once no record of run-a is left in the spool, its settings are forgotten with its ranges.
    restored.trim(at(120));
    expect(restored.outcomesAt(at(50))).toBeUndefined();
    expect(restored.snapshot().outcomes).toEqual({});
  });

  it('trim forgets the ranges wholly before the oldest record left in the spool, and only those', () => {
    const ledger = ledgerWithWindows(3);
    ledger.trim(at(150));
    expect(ledger.snapshot().closed.map((r) => r.seq)).toEqual([1, 2]);
    expect(ledger.windowAt(at(150))).toEqual({ runId: 'run-a', seq: 1 });
    ledger.trim(at(300));
    expect(ledger.snapshot().closed).toEqual([]);
    expect(ledger.windowAt(at(300))).toEqual({ runId: 'run-a', seq: 3 });
  });

  it('a checkpoint state does not grow with the run once the spool lets its records go', () => {
    const ledger = new CoverageLedger(60, run, null);
    ledger.crossRun(run, at(0));
    let size = 0;
    for (let i = 0; i < 2000; i++) {
      ledger.count({ ...emptyCounts(), records: 1 });
      ledger.closeLive(run.startedAt + (i + 1) * 60_000, at(100 * (i + 1)), false, 0);
      // The spool keeps about five windows' records.
      ledger.trim(at(Math.max(0, 100 * (i - 4))));
      if (i === 10) size = JSON.stringify(ledger.snapshot()).length;
    }
    // Only the ranges still in the spool are kept; longer numbers are all that grows.
    expect(ledger.snapshot().closed.length).toBeLessThanOrEqual(5);
    expect(JSON.stringify(ledger.snapshot()).length).toBeLessThan(size * 1.2);
  });
});
