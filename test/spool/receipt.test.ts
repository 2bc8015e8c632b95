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

  it('keepUntil: it is reported to the spool after the other, whichever settles last (a checkpoint that gave up a line, after the records that brought its pieces)', () => {
    const l = ledger();
    const source = new Receipt(1, l);
    const checkpoint = new Receipt(2, l);
    const rows = source.hold(); // the source's rows, delivered after the checkpoint's
    checkpoint.keepUntil(source);
    checkpoint.made();
    source.made();
    expect(l.settledAt).toEqual([]);
    rows.release();
    expect([source.settled, checkpoint.settled]).toEqual([true, true]);
    expect(l.settledAt).toEqual([1, 2]);
    // The checkpoint's own rows delivered last: reported when they are, still after the source.
    const l2 = ledger();
    const src = new Receipt(3, l2);
    const cp = new Receipt(4, l2);
    const cpRows = cp.hold();
    cp.keepUntil(src);
    cp.made();
    src.made();
    expect(l2.settledAt).toEqual([3]);
    cpRows.release();
    expect(l2.settledAt).toEqual([3, 4]);
  });

  it('the pieces of a CRI line are kept until the request that finished it settles, and reported to the spool before it, whenever they settle', () => {
    const l = ledger();
    const piece = new Receipt(1, l);
    const other = new Receipt(2, l);
    const decider = new Receipt(3, l);
    const rows = piece.hold(); // its own rows, delivered late
    piece.piecesFor(decider);
    other.piecesFor(decider);
    piece.made();
    other.made();
    expect(piece.settled).toBe(false);
    decider.made();
    // The decider is settled (its own part is done) and lets its pieces go, but waits to be reported.
    expect(decider.settled).toBe(true);
    expect(other.settled).toBe(true);
    expect(l.settledAt).toEqual([2]);
    rows.release();
    expect(l.settledAt).toEqual([2, 1, 3]);
  });

  it('a record that finished one line and began the next is reported after the first line\'s pieces and before the next line\'s end', () => {
    const l = ledger();
    const a = new Receipt(1, l);
    const b = new Receipt(2, l);
    const c = new Receipt(3, l);
    a.piecesFor(b);
    b.piecesFor(c);
    const late = a.hold();
    a.made();
    b.made();
    c.made();
    expect(l.settledAt).toEqual([]);
    late.release();
    expect(l.settledAt).toEqual([1, 2, 3]);
  });
});
