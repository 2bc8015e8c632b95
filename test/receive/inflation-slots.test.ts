import { describe, expect, it } from 'vitest';
import { InflationSlots } from '../../src/receive/inflation-slots.js';

describe('bodies inflated at once', () => {
  it('are never more than the slots, every waiting body gets one in order, and a release given twice frees one slot', async () => {
    const slots = new InflationSlots(2);
    let busy = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const release = await slots.take();
        busy++;
        most = Math.max(most, busy);
        order.push(i);
        await new Promise((r) => setTimeout(r, 2 + (i % 3)));
        busy--;
        release();
        release();
      }),
    );
    expect(most).toBe(2);
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
