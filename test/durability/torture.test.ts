import { describe, expect, it } from 'vitest';
import { containerNodeOptions } from '../support/container-node-options.js';
import { torture } from '../support/torture.js';

describe('crash torture (seeded; `npm run torture` runs it longer)', () => {
  it('30 cycles of kill -9 at random moments, SIGSTOP past the lock, SIGTERM, a full disk and ADX outages: nothing answered 200 is lost, coverage counts every flow once, no exit but the kills', async () => {
    const report = await torture({
      seed: 20,
      cycles: 30,
      lanes: 2,
      flowsPerBody: 12,
      checkEvery: 5,
      trafficMs: [150, 600],
      nodeOptions: containerNodeOptions(),
      tmpfs: true,
    });
    console.log(`[torture] ${JSON.stringify({ ...report, unexpectedExits: report.unexpectedExits.length })}`);
    expect(report.cycles).toBe(30);
    expect(report.unexpectedExits).toEqual([]);
    expect(report.flowsAcknowledged).toBeGreaterThan(1000);
    expect(report.lost).toBe(0);
    expect(report.allowedMissing).toBe(0);
    expect(report.coverageMismatches).toEqual([]);
    expect(report.coverageSeen).toBe(report.flowsAcknowledged);
    // Every kind of fault happened (the seed is chosen so; a full disk only where a tmpfs can be mounted).
    expect(Object.keys(report.faults)).toEqual(expect.arrayContaining(['kill9', 'kill9_startup', 'sigterm', 'sigstop', 'adx_down']));
  }, 180_000);
});
