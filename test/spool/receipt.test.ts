import { describe, expect, it } from 'vitest';
import { Receipt, type Settlement } from '../../src/spool/index.js';

function ledger(): Settlement & { settledAt: number[] } {
  const settledAt: number[] = [];
  return { settledAt, settled: (r) => settledAt.push(r.position) };
}

describe('receipts: a spooled record leaves the spool once its receipt settles', () => {
  it('settles once its rows are made and every one delivered, in any slicing, and tells the spool once', () => {
    const l = ledger();
    const r = new Receipt(7, l);
    r.expect(3);
    r.expect(2);
    r.delivered(4);
    expect(r.settled).toBe(false);
    r.made();
    expect(r.settled).toBe(false);
    r.delivered(1);
    expect(r.settled).toBe(true);
    expect(l.settledAt).toEqual([7]);
  });

  it('its row count is fixed when it is made: more rows after that, or more delivered than expected, is a bug said loudly', () => {
    const r = new Receipt(1);
    r.expect(1);
    r.made();
    r.made(); // a second call changes nothing
    expect(() => r.expect(1)).toThrow(/made/);
    r.delivered(1);
    expect(r.settled).toBe(true);
    const over = new Receipt(2);
    over.expect(1);
    expect(() => over.delivered(3)).toThrow(/more rows than it expected/);
  });

  it('a hold keeps it until released (once: a second release changes nothing)', () => {
    const r = new Receipt(1);
    const h = r.hold();
    r.made();
    expect(r.settled).toBe(false);
    h.release();
    h.release();
    expect(r.settled).toBe(true);
  });

  it('keepUntil: it stays until the other settles, then goes (a CRI line\'s first piece until the request that finished it is delivered)', () => {
    const first = new Receipt(1);
    const second = new Receipt(2);
    first.keepUntil(second);
    first.made();
    expect(first.settled).toBe(false);
    second.expect(1);
    second.made();
    second.delivered(1);
    expect([second.settled, first.settled]).toEqual([true, true]);
    // Keeping until one already settled keeps nothing.
    const late = new Receipt(3);
    late.keepUntil(second);
    late.made();
    expect(late.settled).toBe(true);
  });
});
