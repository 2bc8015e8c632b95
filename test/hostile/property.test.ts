/**
 * Property: whatever keys and values a Hubble record carries, in whatever position, format and
 * placement (see test/support/hostile-records.ts), the service answers no 5xx but 503, keeps
 * running, leaves Object.prototype as it was, keeps HubbleCoverage balanced and non-negative, and
 * delivers the next valid flow; live and parked, in this process and as the image runs it. Seeded
 * and bounded here; `npm run fuzz -- --generator records` runs it longer.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileBody } from '../support/hostile-records.js';
import { checkBody, childTarget, coverageProblems, coverageRows, inProcessTarget, type Target } from '../support/hostile-targets.js';

const SEED = 20261121;

describe.each([
  { name: 'in this process, live', make: () => inProcessTarget(false), runs: 60 },
  { name: 'in this process, parked behind a blocked sink', make: () => inProcessTarget(true), runs: 40 },
  { name: 'as the image runs it (child process, image NODE_OPTIONS), live', make: () => childTarget(), runs: 40 },
])('hostile records, $name', ({ make, runs }) => {
  let target: Target;
  const statuses = new Map<number, number>();
  let deferred = 0;
  beforeAll(async () => {
    target = await make();
  });
  afterAll(() => target?.stop());

  it(`${runs} generated bodies: no 5xx but 503, alive, Object.prototype unchanged, coverage balanced, the next valid flow delivered`, async () => {
    await fc.assert(
      fc.asyncProperty(hostileBody, async (b) => {
        const r = await checkBody(target, b);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.deferred) deferred++;
      }),
      { seed: SEED, numRuns: runs, endOnFailure: true },
    );
    // The bodies reach the decoders and the normalizer, not only the door.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(runs / 2);
    if (target.name.includes('parked')) expect(deferred).toBeGreaterThan(runs / 3);
    expect(coverageRows(target.dataDir)).toBeGreaterThan(0);
    expect(coverageProblems(target.dataDir)).toEqual([]);
  }, 120_000);
});
