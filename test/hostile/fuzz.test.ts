import { describe, expect, it } from 'vitest';
import { fuzz } from '../support/fuzz.js';

// A short seeded run of `npm run fuzz` (which runs 10,000 bodies and more): the same checks.
describe('fuzzing the receiver with mutated Fluent Bit bodies (short seeded run)', () => {
  it('400 bodies: no crash, no hang, no 5xx but 503, dead letters bounded per request, a valid flow still delivered', async () => {
    const report = await fuzz({ bodies: 400, maxSeconds: 60, seed: 20261202, concurrency: 2, hangMs: 10_000 });
    expect(report.bodies).toBe(400);
    expect(report.crashes).toBe(0);
    expect(report.hangs).toBe(0);
    expect(report.unexpected5xx).toBe(0);
    expect(report.maxDeadLetterRowsPerRequest).toBeLessThanOrEqual(101);
    expect(report.peakRssMiB).toBeLessThan(384);
    expect(report.deliveredAfter).toBe(true);
    // The run must reach the decoders, not stop at the door: valid, broken and refused bodies alike.
    expect(report.statuses['200']).toBeGreaterThan(50);
    expect(report.statuses['400']).toBeGreaterThan(50);
  }, 90_000);
});
