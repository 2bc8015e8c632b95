import { describe, expect, it } from 'vitest';
import type { ChunkWriter, EncodedChunk } from '../../src/batch/index.js';
import { configSchema } from '../../src/config/index.js';
import { Processor, type Output } from '../../src/process/index.js';
import { Receipt } from '../../src/spool/index.js';
import type { RowOfTable, TableKey } from '../../src/schema/index.js';
import { LinesWriter } from '../../src/sink/lines-writer.js';
import { flowLine } from '../support/hostile-bodies.js';

const rowsOf = (c: EncodedChunk | undefined) => (c ? c.data.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []);
const json = <K extends TableKey>(): ChunkWriter<RowOfTable[K]> => new LinesWriter<RowOfTable[K]>((r) => JSON.stringify(r));
const chunkOf = (out: Output, table: TableKey) => out.chunks.find((c) => c.table === table)?.chunk;
const request = (p: Processor, recs: Record<string, unknown>[]) =>
  p.slice({
    records: recs.map((record) => ({ record, timeSec: null })),
    bad: [],
    from: 0,
    to: recs.length,
    receivedAt: Date.now(),
    piecesSince: Date.now(),
    source: new Receipt(-1),
    aggregateAllowed: false,
    foldedBefore: false,
    stamp: { receiverNode: 'n', runId: 'r', coverageWindow: 0 },
  });
const lostLine = (n: unknown) => JSON.stringify({ lost_events: { source: 'PERF_EVENT_RING_BUFFER', num_events_lost: n }, node_name: 'c/n', time: '2026-01-01T00:00:00Z' });

describe('records with values that cannot be: dead letters naming the field, the rest of the request made', () => {
  it('a flow with a negative port is a normalize dead letter `invalid_value`, counted as a dead-lettered flow', () => {
    const p = new Processor(configSchema.parse({}), json);
    const out = request(p, [{ log: flowLine('ok-1') }, { log: flowLine('bad', { l4: { TCP: { source_port: -1 } } }) }, { log: flowLine('ok-2') }]);
    expect(rowsOf(chunkOf(out, 'flows')).map((r) => r.Uuid)).toEqual(['ok-1', 'ok-2']);
    const dead = rowsOf(chunkOf(out, 'deadLetters'));
    expect(dead).toMatchObject([{ Stage: 'normalize', Reason: 'invalid_value' }]);
    expect(String(dead[0]!.Message)).toMatch(/^flow\.l4\.TCP\.source_port is not a non-negative integer/);
    expect(String(dead[0]!.RawData)).toContain('"uuid":"bad"');
    expect(out.counts).toMatchObject({ flowsSeen: 3, flowsDeadLettered: 1, flows: 2 });
  });

  it('a negative lost-event count adds nothing to what Hubble lost: it is a dead letter, and a real one still counts', () => {
    const p = new Processor(configSchema.parse({}), json);
    const out = request(p, [{ log: lostLine(-10000) }, { log: lostLine('10000') }, { log: lostLine(2 ** 53) }]);
    expect(out.counts.lost).toEqual([{ source: 'PERF_EVENT_RING_BUFFER', node: 'n', events: 10000 }]);
    expect(rowsOf(chunkOf(out, 'events')).map((r) => r.NumEventsLost)).toEqual([10000]);
    expect(rowsOf(chunkOf(out, 'deadLetters')).map((r) => [r.Reason, String(r.Message).split(' ')[0]])).toEqual([
      ['invalid_value', 'lost_events.num_events_lost'],
      ['invalid_value', 'lost_events.num_events_lost'],
    ]);
  });

  it('a CRI piece whose stream, file or kubernetes fields are `{"toString":1}` is joined like any other, without calling them', () => {
    const p = new Processor(configSchema.parse({}), json);
    const line = flowLine('joined');
    const trap = { toString: 1, valueOf: 1 };
    const piece = (text: string, logtag: string) => ({ message: text, logtag, stream: trap, kubernetes: { namespace_name: trap, pod_name: trap, container_name: ['x'] } });
    const first = request(p, [piece(line.slice(0, 40), 'P')]);
    expect(first.counts.skips.get('partial_piece')).toBe(1);
    const second = request(p, [piece(line.slice(40), 'F')]);
    expect(rowsOf(chunkOf(second, 'flows')).map((r) => r.Uuid)).toEqual(['joined']);
  });
});
