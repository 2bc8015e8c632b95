import { describe, expect, it } from 'vitest';
import type { ChunkWriter, EncodedChunk } from '../../src/batch/index.js';
import { configSchema } from '../../src/config/index.js';
import { Processor, type Output, type SliceInput } from '../../src/process/index.js';
import type { RowOfTable, TableKey } from '../../src/schema/index.js';
import { LinesWriter } from '../../src/sink/lines-writer.js';
import { Receipt } from '../../src/spool/index.js';
import { flowLine } from '../support/hostile-bodies.js';

const rowsOf = (c: EncodedChunk) => c.data.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const json = <K extends TableKey>(): ChunkWriter<RowOfTable[K]> => new LinesWriter<RowOfTable[K]>((r) => JSON.stringify(r));
const records = (lines: string[]) => lines.map((l) => ({ record: { log: l } as Record<string, unknown>, timeSec: null }));
const chunkOf = (out: Output, table: TableKey) => out.chunks.find((c) => c.table === table)?.chunk;
const stamp = { receiverNode: 'node-a', runId: 'run-1', coverageWindow: 7 };

function slice(p: Processor, recs: SliceInput['records'], extra: Partial<SliceInput> = {}): Output {
  const receivedAt = extra.receivedAt ?? Date.now();
  return p.slice({ records: recs, bad: [], from: 0, to: recs.length, receivedAt, piecesSince: receivedAt, source: new Receipt(-1), aggregateAllowed: false, foldedBefore: false, stamp, ...extra });
}

describe('the processor: a slice of a decoded request in, encoded rows per table and counts out', () => {
  it('makes flows, events and dead letters of one slice in one call, stamps who received them, and says what it came to', () => {
    const p = new Processor(configSchema.parse({}), json);
    const lost = JSON.stringify({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '2' }, node_name: 'c/n', time: '2026-01-01T00:00:00Z' });
    const out = slice(p, records([flowLine('f-1'), 'level=info msg="agent line"', '{"flow":{"uuid":"cut', lost, flowLine('f-2')]));
    const flows = rowsOf(chunkOf(out, 'flows')!);
    expect(flows.map((r) => r.Uuid)).toEqual(['f-1', 'f-2']);
    expect(flows[0]).toMatchObject({ ReceiverNode: 'node-a', RunId: 'run-1', CoverageWindow: 7 });
    expect(rowsOf(chunkOf(out, 'events')!)).toMatchObject([{ NumEventsLost: 2, ReceiverNode: 'node-a', RunId: 'run-1' }]);
    expect(rowsOf(chunkOf(out, 'deadLetters')!)).toMatchObject([{ Reason: 'invalid_json', ReceiverNode: 'node-a' }]);
    expect(out.counts).toMatchObject({ records: 5, flows: 2, events: 1, skipped: 1, deadLettered: 1, flowsSeen: 3, flowsDeadLettered: 1 });
    expect(out.counts.outcomes.get('kept')).toBe(2);
    expect(out.counts.lost).toEqual([{ source: 'HUBBLE_RING_BUFFER', node: 'n', events: 2 }]);
    expect(out.rows).toBe(4);
  });

  it('a row its sink cannot encode is a dead letter of its own; the rest of the slice goes on', () => {
    let calls = 0;
    // A writer that refuses the second flow row, as an encoder refuses a value it cannot hold.
    const picky = <K extends TableKey>(table: K): ChunkWriter<RowOfTable[K]> => {
      const inner = json<K>();
      if (table !== 'flows') return inner;
      return {
        add(row) {
          if (++calls === 2) throw new Error('value out of range');
          inner.add(row);
        },
        finish: () => inner.finish(),
      };
    };
    const p = new Processor(configSchema.parse({}), picky);
    const out = slice(p, records([flowLine('a'), flowLine('b'), flowLine('c')]));
    expect(rowsOf(chunkOf(out, 'flows')!).map((r) => r.Uuid)).toEqual(['a', 'c']);
    expect(rowsOf(chunkOf(out, 'deadLetters')!)).toMatchObject([{ Stage: 'normalize', Reason: 'unencodable' }]);
    expect(out.counts).toMatchObject({ flowsSeen: 3, flowsDeadLettered: 1 });
    expect(out.counts.outcomes.get('kept')).toBe(2);
  });

  it('a record that makes the extractor throw is a dead letter of its own, and the slice goes on', () => {
    const p = new Processor(configSchema.parse({}), json);
    const trap = { log: 'x', logtag: 'P', get kubernetes(): never {
      throw new Error('a getter that throws');
    } } as unknown as Record<string, unknown>;
    const out = slice(p, [{ record: trap, timeSec: null }, ...records([flowLine('after')])]);
    expect(rowsOf(chunkOf(out, 'flows')!).map((r) => r.Uuid)).toEqual(['after']);
    expect(rowsOf(chunkOf(out, 'deadLetters')!)).toMatchObject([{ Stage: 'extract', Reason: 'extract_failed' }]);
    expect(out.counts).toMatchObject({ flowsSeen: 2, flowsDeadLettered: 1 });
  });

  it('a CRI partial line started by one request and finished by the next: the line holds the first until the second decides it', () => {
    const p = new Processor(configSchema.parse({}), json);
    const line = flowLine('split');
    const first = new Receipt(1);
    const second = new Receipt(2);
    const a = slice(p, [{ record: { log: line.slice(0, 30), logtag: 'P', stream: 'stdout' }, timeSec: null }], { source: first });
    expect(a.rows).toBe(0);
    first.made();
    expect(first.settled).toBe(false);
    const b = slice(p, [{ record: { log: line.slice(30), logtag: 'F', stream: 'stdout' }, timeSec: null }], { source: second });
    expect(rowsOf(chunkOf(b, 'flows')!).map((r) => r.Uuid)).toEqual(['split']);
    expect(b.decided).toHaveLength(1);
    expect(b.decided[0]!.sources).toEqual([first]);
    for (const h of b.decided[0]!.holds) h.release();
    expect(first.settled).toBe(true);
  });

  it('folded before (a replay after a crash): outcomes are told the same, aggregated flows are not folded again', () => {
    const config = configSchema.parse({ aggregation: { enabled: true } });
    const first = new Processor(config, json);
    const lines = records([flowLine('a'), flowLine('b')]);
    const live = slice(first, lines);
    expect(live.counts.outcomes.get('aggregated')).toBe(2);
    const aggregated = first.checkpoint({ now: Date.now(), expireAt: null, aggregates: { idPrefix: 'agg-run-1-0' }, stamp });
    expect(rowsOf(chunkOf(aggregated, 'flows')!)).toMatchObject([{ Uuid: 'agg-run-1-0-0', FlowCount: 2, AggregatedFlows: 2, CoverageWindow: 7 }]);
    const again = new Processor(config, json);
    const replayed = slice(again, records([flowLine('a'), flowLine('b')]), { foldedBefore: true });
    expect(replayed.counts.outcomes.get('aggregated')).toBe(2);
    expect(again.checkpoint({ now: Date.now(), expireAt: null, aggregates: { idPrefix: 'x' }, stamp }).rows).toBe(0);
  });

  it('a checkpoint gives up lines past their age and says which, so that a replay can forget them at the same point', () => {
    const p = new Processor(configSchema.parse({}), json);
    const source = new Receipt(3);
    const t0 = Date.now();
    slice(p, [{ record: { log: '{"flow":{"uuid":"never-fin', logtag: 'P', stream: 'stdout' }, timeSec: null }], { source, receivedAt: t0 });
    expect(p.oldestPartialAt).toBe(t0);
    const out = p.checkpoint({ now: t0 + 60_000, expireAt: t0 + 60_000, aggregates: null, stamp });
    expect(out.given).toHaveLength(1);
    expect(out.given[0]!.line.sources).toEqual([source]);
    expect(rowsOf(chunkOf(out, 'deadLetters')!)).toMatchObject([{ Reason: 'partial_incomplete' }]);
    expect(out.counts).toMatchObject({ flowsSeen: 1, flowsDeadLettered: 1 });
    expect(p.oldestPartialAt).toBe(null);
  });

  it('consumes its records: each is released once made into rows', () => {
    const p = new Processor(configSchema.parse({}), json);
    const input = records([flowLine('x'), flowLine('y')]);
    slice(p, input);
    expect(input.every((r) => Object.keys(r.record).length === 0)).toBe(true);
  });
});
