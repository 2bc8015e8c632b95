import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { TableKey } from '../../src/schema/index.js';
import { RowSink } from '../support/row-sink.js';
import { CONTENT_TYPE, criRecord, eventV2, FbTime, gzip, jsonLinesBody, msgpackBody, snappyRaw, zstd } from '../support/fluent-bit-bodies.js';
import { startService, type Running } from '../helpers/service.js';

const flowLine = (uuid: string) => JSON.stringify({ flow: { time: '2026-01-01T00:00:00Z', uuid, verdict: 'DROPPED' }, node_name: 'n1' });
const ndjson = { 'content-type': CONTENT_TYPE.json_lines };

let running: Running[] = [];
async function start(...args: Parameters<typeof startService>) {
  const s = await startService(...args);
  running.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});

describe('a body with bad parts: the good records still come out', () => {
  it('json_lines with a malformed line: 200, the other lines are rows, the bad one a dead letter', async () => {
    const svc = await start();
    const body = Buffer.from([JSON.stringify({ log: flowLine('a') }), '{"log": "{\\"flow\\": {broken', JSON.stringify({ log: flowLine('b') })].join('\n'));
    const res = await svc.post(body, ndjson);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ records: 2, flows: 2, deadLettered: 1 });
    expect((await svc.rows('HubbleFlows')).map((r) => r.Uuid)).toEqual(['a', 'b']);
    const dead = await svc.rows('HubbleDeadLetters');
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ Stage: 'receive', Reason: 'invalid_json', RawData: '{"log": "{\\"flow\\": {broken' });
    expect(await svc.metric('hubble_adx_parse_errors_total', { stage: 'receive', reason: 'invalid_json' })).toBe(1);
    expect(await svc.metric('hubble_adx_dead_letters_total', { stage: 'receive', reason: 'invalid_json' })).toBe(1);
  });

  it('a flow line that is not valid JSON inside a good record: dead letter from extract, the rest go on', async () => {
    const svc = await start();
    const body = msgpackBody([criRecord(flowLine('x')), criRecord('{"flow":{"uuid":"trunc'), criRecord(flowLine('y'))]);
    const res = await svc.post(body, { 'content-type': CONTENT_TYPE.msgpack });
    expect(res.status).toBe(200);
    expect((await svc.rows('HubbleFlows')).map((r) => r.Uuid)).toEqual(['x', 'y']);
    expect(await svc.rows('HubbleDeadLetters')).toMatchObject([{ Stage: 'extract', Reason: 'invalid_json', RawData: '{"flow":{"uuid":"trunc' }]);
  });

  it('msgpack with a corrupt tail: events before it are rows, the tail is kept (base64) as a dead letter', async () => {
    const svc = await start();
    const good = msgpackBody([{ log: flowLine('m1') }, { log: flowLine('m2') }]);
    // An event cut short: array32 of 2, then a map that announces 5 entries and holds half of one.
    const tail = Buffer.from([0xdd, 0x00, 0x00, 0x00, 0x02, 0x85, 0xa1, 0x61]);
    const res = await svc.post(Buffer.concat([good, tail]), { 'content-type': CONTENT_TYPE.msgpack });
    expect(res.status).toBe(200);
    expect((await svc.rows('HubbleFlows')).map((r) => r.Uuid)).toEqual(['m1', 'm2']);
    const dead = await svc.rows('HubbleDeadLetters');
    expect(dead[0]).toMatchObject({ Reason: 'invalid_msgpack', RawData: tail.toString('base64') });
  });

  it('msgpack event of the wrong shape: that event is set aside, the others go on', async () => {
    const svc = await start();
    const { Encoder } = await import('@msgpack/msgpack');
    const odd = Buffer.from(new Encoder().encode(['not', 'an', 'event']));
    const res = await svc.post(Buffer.concat([odd, eventV2(new FbTime(1, 0), { log: flowLine('ok') })]), { 'content-type': CONTENT_TYPE.msgpack });
    expect(res.status).toBe(200);
    expect((await svc.rows('HubbleFlows')).map((r) => r.Uuid)).toEqual(['ok']);
    expect((await svc.rows('HubbleDeadLetters'))[0]).toMatchObject({ Reason: 'invalid_event' });
  });
});

describe('bodies that can never succeed: 4xx, counted, and what can be kept is kept', () => {
  it('nothing decodable: 400, body kept as a dead letter', async () => {
    const svc = await start();
    const res = await svc.post(Buffer.from('this is not json at all'), { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'no_valid_record' });
    expect(await svc.metric('hubble_adx_bodies_rejected_total', { reason: 'no_valid_record' })).toBe(1);
    expect((await svc.rows('HubbleDeadLetters'))[0]).toMatchObject({ Reason: 'invalid_json', RawData: 'this is not json at all' });
  });

  it('truncated gzip: 400 invalid_compression, raw body kept', async () => {
    const svc = await start();
    const full = gzip(jsonLinesBody([{ log: flowLine('t') }]));
    const cut = full.subarray(0, full.length - 12);
    const res = await svc.post(cut, { ...ndjson, 'content-encoding': 'gzip' });
    expect(res.status).toBe(400);
    expect(await svc.metric('hubble_adx_bodies_rejected_total', { reason: 'invalid_compression' })).toBe(1);
    expect((await svc.rows('HubbleDeadLetters'))[0]).toMatchObject({ Stage: 'receive', Reason: 'invalid_compression', RawData: cut.toString('base64') });
  });

  it('body over limits.maxBodyBytes: 413', async () => {
    const svc = await start({ limits: { maxBodyBytes: 4096 } });
    const res = await svc.post(Buffer.alloc(10_000, 0x20), ndjson);
    expect(res.status).toBe(413);
    expect(await svc.metric('hubble_adx_bodies_rejected_total', { reason: 'body_too_large' })).toBe(1);
  });

  for (const [encoding, compress] of [['gzip', gzip], ['zstd', zstd], ['snappy', snappyRaw]] as const) {
    it(`${encoding} bomb: 413 without inflating past the bound, and the service keeps serving`, async () => {
      const svc = await start({ limits: { maxDecompressedBytes: 1024 * 1024 } });
      const bomb = compress(Buffer.alloc(64 * 1024 * 1024, 0x20));
      expect(bomb.length).toBeLessThan(4 * 1024 * 1024);
      const res = await svc.post(bomb, { ...ndjson, 'content-encoding': encoding });
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ error: 'decompressed_too_large' });
      expect((await svc.post(jsonLinesBody([{ log: flowLine('after') }]), ndjson)).status).toBe(200);
    });
  }

  it('more records than limits.maxRecordsPerRequest: 413', async () => {
    const svc = await start({ limits: { maxRecordsPerRequest: 2 } });
    const res = await svc.post(jsonLinesBody([{ log: 'a' }, { log: 'b' }, { log: 'c' }]), ndjson);
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'too_many_records' });
  });

  it('a Content-Type no Fluent Bit format uses: 415; an unknown Content-Encoding: 415', async () => {
    const svc = await start();
    expect((await svc.post(Buffer.from('x'), { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await svc.post(Buffer.from('x'), { ...ndjson, 'content-encoding': 'deflate' })).status).toBe(415);
    expect(await svc.metric('hubble_adx_bodies_rejected_total', { reason: 'unsupported_content_type' })).toBe(1);
    expect(await svc.metric('hubble_adx_bodies_rejected_total', { reason: 'unsupported_encoding' })).toBe(1);
  });
});

describe('authentication', () => {
  const body = jsonLinesBody([{ log: flowLine('auth') }]);
  it('bearer token: missing or wrong is 401, right is 200', async () => {
    const svc = await start({ auth: { bearerToken: 'a-long-enough-secret-token' } });
    expect((await svc.post(body, ndjson)).status).toBe(401);
    expect((await svc.post(body, { ...ndjson, authorization: 'Bearer a-long-enough-secret-tokeN' })).status).toBe(401);
    expect((await svc.post(body, { ...ndjson, authorization: 'Bearer a-long-enough-secret-token' })).status).toBe(200);
    expect(await svc.metric('hubble_adx_bodies_rejected_total', { reason: 'unauthorized' })).toBe(2);
  });

  it('basic auth (Fluent Bit http_User/http_Passwd)', async () => {
    const svc = await start({ auth: { basicUser: 'fluent', basicPassword: 'bit' } });
    const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    expect((await svc.post(body, { ...ndjson, authorization: basic('fluent', 'bat') })).status).toBe(401);
    expect((await svc.post(body, { ...ndjson, authorization: basic('fluent', 'bit') })).status).toBe(200);
  });
});

/** A sink that holds every write until released: the pipeline fills up behind it. */
class GatedSink extends RowSink {
  readonly name = 'gated';
  rows = 0;
  readonly uuids: unknown[] = [];
  private gate: Promise<void>;
  private open!: () => void;
  constructor() {
    super();
    this.gate = new Promise((r) => (this.open = r));
  }
  release() {
    this.open();
  }
  protected async take(t: TableKey, rows: Record<string, unknown>[]) {
    await this.gate;
    this.rows += rows.length;
    if (t === 'flows') for (const r of rows) this.uuids.push(r.Uuid);
  }
}

describe('backpressure: a full pipeline answers 503 with Retry-After, never another 4xx', () => {
  it('without a spool: refuses while the rows in memory are at their bound, takes again once the sink catches up, loses nothing it accepted', async () => {
    const sink = new GatedSink();
    const svc = await start({ spool: { enabled: false }, batch: { maxPendingRows: 10, maxRows: 5 }, server: { retryAfterSeconds: 7 } }, sink);
    const statuses: number[] = [];
    let accepted = 0;
    for (let i = 0; i < 8; i++) {
      const res = await svc.post(jsonLinesBody([1, 2, 3].map((j) => ({ log: flowLine(`bp-${i}-${j}`) }))), ndjson);
      statuses.push(res.status);
      if (res.status === 200) accepted += 3;
      else expect(res.headers.get('retry-after')).toBe('7');
    }
    expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
    expect(statuses.slice(4)).toEqual([503, 503, 503, 503]);
    // Backpressure is answered in band: the endpoint stays ready, so Fluent Bit sees the 503s.
    expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
    expect(await svc.metric('hubble_adx_backpressure_responses_total', { reason: 'queue_full' })).toBe(4);
    sink.release();
    await svc.service.pipeline.flush();
    expect(sink.rows).toBe(accepted);
    expect((await svc.post(jsonLinesBody([{ log: flowLine('later') }]), ndjson)).status).toBe(200);
  });

  it('with the spool: rows at their bound in memory park requests in the spool (200), made into rows in order once the sink catches up', async () => {
    const sink = new GatedSink();
    const svc = await start({ batch: { maxPendingRows: 10, maxRows: 5 } }, sink);
    const answers: { status: number; deferred?: boolean }[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await svc.post(jsonLinesBody([1, 2, 3].map((j) => ({ log: flowLine(`park-${i}-${j}`) }))), ndjson);
      answers.push({ status: res.status, deferred: ((await res.json()) as { deferred?: boolean }).deferred });
    }
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200, 200, 200]);
    expect(answers.map((a) => a.deferred)).toEqual([false, false, false, false, true, true, true, true]);
    expect(await svc.metric('hubble_adx_spool_parked_requests')).toBe(4);
    expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
    sink.release();
    await svc.service.pipeline.flush();
    expect(sink.uuids).toEqual(Array.from({ length: 8 }, (_, i) => [1, 2, 3].map((j) => `park-${i}-${j}`)).flat());
    expect(await svc.metric('hubble_adx_spool_parked_requests')).toBe(0);
    // Counted once each: records when they arrived, flows when they were made into rows.
    expect(await svc.metric('hubble_adx_records_received_total')).toBe(24);
    expect(await svc.metric('hubble_adx_flows_total')).toBe(24);
  });

  it('while draining for shutdown: 503', async () => {
    const svc = await start();
    const drained = svc.service.pipeline.close();
    const res = await svc.post(jsonLinesBody([{ log: flowLine('late') }]), ndjson);
    expect(res.status).toBe(503);
    await drained;
  });
});
