import { describe, expect, it } from 'vitest';
import type { ChunkWriter, EncodedChunk } from '../../src/batch/index.js';
import { configSchema } from '../../src/config/index.js';
import { Processor } from '../../src/process/index.js';
import type { RowOfTable, TableKey } from '../../src/schema/index.js';
import { LinesWriter } from '../../src/sink/lines-writer.js';
import { flowLine } from '../support/hostile-bodies.js';

const rowsOf = (c: EncodedChunk) => c.data.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const json = <K extends TableKey>(): ChunkWriter<RowOfTable[K]> => new LinesWriter<RowOfTable[K]>((r) => JSON.stringify(r));
const records = (lines: string[]) => lines.map((l) => ({ record: { log: l }, timeSec: null }));
const chunkOf = (out: ReturnType<Processor['request']>, table: TableKey) => out.chunks.find((c) => c.table === table)?.chunk;

describe('the per-request processor: a decoded request in, encoded rows per table and counts out', () => {
  it('makes flows, events and dead letters of one request in one call, and says what it came to', () => {
    const p = new Processor(configSchema.parse({}), json);
    const lost = JSON.stringify({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '2' }, node_name: 'c/n', time: '2026-01-01T00:00:00Z' });
    const out = p.request({ records: records([flowLine('f-1'), 'level=info msg="agent line"', '{"flow":{"uuid":"cut', lost, flowLine('f-2')]), bad: [], receivedAt: Date.now(), madeBefore: false });
    expect(rowsOf(chunkOf(out, 'flows')!).map((r) => r.Uuid)).toEqual(['f-1', 'f-2']);
    expect(rowsOf(chunkOf(out, 'events')!).map((r) => r.NumEventsLost)).toEqual([2]);
    expect(rowsOf(chunkOf(out, 'deadLetters')!).map((r) => r.Reason)).toEqual(['invalid_json']);
    expect(out.counts).toMatchObject({ records: 5, flows: 2, events: 1, skipped: 1, deadLettered: 1, flowsSeen: 3, flowsDeadLettered: 1 });
    expect(out.counts.outcomes.get('kept')).toBe(2);
    expect(out.counts.lost).toEqual([{ source: 'HUBBLE_RING_BUFFER', node: 'n', events: 2 }]);
    expect(out.rows).toBe(4);
  });

  it('a row its sink cannot encode is a dead letter of its own; the rest of the request goes on', () => {
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
    const out = p.request({ records: records([flowLine('a'), flowLine('b'), flowLine('c')]), bad: [], receivedAt: Date.now(), madeBefore: false });
    expect(rowsOf(chunkOf(out, 'flows')!).map((r) => r.Uuid)).toEqual(['a', 'c']);
    expect(rowsOf(chunkOf(out, 'deadLetters')!)).toMatchObject([{ Stage: 'normalize', Reason: 'unencodable' }]);
    expect(out.counts).toMatchObject({ flowsSeen: 3, flowsDeadLettered: 1 });
    expect(out.counts.outcomes.get('kept')).toBe(2);
  });

  it('a CRI partial line started by one request and finished by the next: the second says whose pieces it finished', () => {
    const p = new Processor(configSchema.parse({}), json);
    const line = flowLine('split');
    const first = { pendingLines: 0 };
    const second = { pendingLines: 0 };
    const a = p.request({ records: [{ record: { log: line.slice(0, 30), logtag: 'P', stream: 'stdout' }, timeSec: null }], bad: [], receivedAt: Date.now(), madeBefore: false, source: first });
    expect(a.rows).toBe(0);
    expect(first.pendingLines).toBe(1);
    const b = p.request({ records: [{ record: { log: line.slice(30), logtag: 'F', stream: 'stdout' }, timeSec: null }], bad: [], receivedAt: Date.now(), madeBefore: false, source: second });
    expect(rowsOf(chunkOf(b, 'flows')!).map((r) => r.Uuid)).toEqual(['split']);
    expect(b.finished).toEqual([first]);
    expect(first.pendingLines).toBe(0);
  });

  it('consumes its records: each is released once made into rows', () => {
    const p = new Processor(configSchema.parse({}), json);
    const input = records([flowLine('x'), flowLine('y')]);
    p.request({ records: input, bad: [], receivedAt: Date.now(), madeBefore: false });
    expect(input.every((r) => Object.keys(r.record).length === 0)).toBe(true);
  });
});
