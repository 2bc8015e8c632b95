import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_TYPE, FbTime, criRecord, eventV1, eventV2, gzip, jsonBody, jsonLinesBody, jsonStreamBody, msgpackBody, snappyRaw, zstd } from '../support/fluent-bit-bodies.js';
import { startService, type Running } from '../helpers/service.js';

const flowLine = (uuid: string, time?: string) =>
  JSON.stringify({ flow: { ...(time ? { time } : {}), uuid, verdict: 'FORWARDED', IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' }, l4: { TCP: { destination_port: 443 } } }, node_name: 'c1/n1' });

describe('every body Fluent Bit http output can send', () => {
  let svc: Running;
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(() => svc.stop());

  async function sendAndRead(body: Buffer, headers: Record<string, string>, uuids: string[]) {
    const res = await svc.post(body, headers);
    expect(res.status).toBe(200);
    const rows = await svc.rows('HubbleFlows');
    const mine = rows.filter((r) => uuids.includes(r.Uuid as string));
    expect(mine.map((r) => r.Uuid)).toEqual(uuids);
    return mine;
  }

  const cases: [string, (recs: Record<string, unknown>[]) => Buffer, string, string | undefined][] = [
    ['msgpack', (r) => msgpackBody(r), CONTENT_TYPE.msgpack, undefined],
    ['msgpack + gzip', (r) => gzip(msgpackBody(r)), CONTENT_TYPE.msgpack, 'gzip'],
    ['msgpack + zstd', (r) => zstd(msgpackBody(r)), CONTENT_TYPE.msgpack, 'zstd'],
    ['msgpack + snappy', (r) => snappyRaw(msgpackBody(r)), CONTENT_TYPE.msgpack, 'snappy'],
    ['json', (r) => jsonBody(r), CONTENT_TYPE.json, undefined],
    ['json + gzip', (r) => gzip(jsonBody(r)), CONTENT_TYPE.json, 'gzip'],
    ['json_stream', (r) => jsonStreamBody(r), CONTENT_TYPE.json_stream, undefined],
    ['json_stream + snappy', (r) => snappyRaw(jsonStreamBody(r)), CONTENT_TYPE.json_stream, 'snappy'],
    ['json_lines', (r) => jsonLinesBody(r), CONTENT_TYPE.json_lines, undefined],
    ['json_lines + zstd', (r) => zstd(jsonLinesBody(r)), CONTENT_TYPE.json_lines, 'zstd'],
  ];
  for (const [name, encode, type, encoding] of cases) {
    it(`${name}: all records come out in order`, async () => {
      const uuids = [1, 2, 3].map((i) => `${name}-${i}`);
      const body = encode(uuids.map((u) => criRecord(flowLine(u, '2026-01-01T00:00:00Z'))));
      await sendAndRead(body, { 'content-type': type, ...(encoding ? { 'content-encoding': encoding } : {}) }, uuids);
    });
  }

  it('msgpack: v1 events with EventTime, integer and float times, and v2 events with metadata', async () => {
    const body = Buffer.concat([
      eventV1(new FbTime(1_700_000_000, 500_000_000), criRecord(flowLine('v1-eventtime'), 'not-a-time')),
      eventV1(1_700_000_001, { log: flowLine('v1-int') }),
      eventV1(1_700_000_002.25, { log: flowLine('v1-float') }),
      eventV2(new FbTime(1_700_000_003, 0), { log: flowLine('v2-meta') }, { otlp: { a: 1 } }),
    ]);
    const rows = await sendAndRead(body, { 'content-type': 'application/msgpack' }, ['v1-eventtime', 'v1-int', 'v1-float', 'v2-meta']);
    // None of these flows has a time of its own: the Fluent Bit event time stands in.
    expect(rows.map((r) => r.TimeGenerated)).toEqual([
      '2023-11-14T22:13:20.500000000Z',
      '2023-11-14T22:13:21.000000000Z',
      '2023-11-14T22:13:22.250000000Z',
      '2023-11-14T22:13:23.000000000Z',
    ]);
  });

  it('json: the date key in every json_date_format, renamed by json_date_key', async () => {
    const svc2 = await startService({ server: { jsonDateKey: 'ts' } });
    try {
      const formats: unknown[] = [1_700_000_000.5, 1_700_000_001, 1_700_000_002_000, '2023-11-14T22:13:23.000000Z', '2023-11-14 22:13:24.000000'];
      const recs = formats.map((_, i) => ({ log: flowLine(`d${i}`) }));
      const res = await svc2.post(jsonBody(recs, 'ts', (i) => formats[i]), { 'content-type': 'application/json' });
      expect(res.status).toBe(200);
      const rows = await svc2.rows('HubbleFlows');
      expect(rows.map((r) => r.TimeGenerated)).toEqual([
        '2023-11-14T22:13:20.500000000Z',
        '2023-11-14T22:13:21.000000000Z',
        '2023-11-14T22:13:22.000000000Z',
        '2023-11-14T22:13:23.000000000Z',
        '2023-11-14T22:13:24.000000000Z',
      ]);
    } finally {
      await svc2.stop();
    }
  });

  it('accepts any request path (Fluent Bit `uri`)', async () => {
    const res = await svc.post(jsonLinesBody([{ log: flowLine('path-1') }]), { 'content-type': 'application/x-ndjson' }, '/any/where');
    expect(res.status).toBe(200);
  });
});

describe('framing Format json bodies too large for one JSON.parse', () => {
  it('an element of the array that is not an object (an array, a number) is set aside, never skipped as if it were a separator', async () => {
    const { frameJsonObjects } = await import('../../src/receive/json-framing.js');
    const objects: string[] = [];
    const garbage: string[] = [];
    frameJsonObjects('[{"log":"a"},[[1],[2]],7,{"log":"b"}]', (o) => objects.push(o) > 0, (g) => garbage.push(g) > 0);
    expect(objects).toEqual(['{"log":"a"}', '{"log":"b"}']);
    expect(garbage).toEqual(['[[1],[2]]', '7,']);
  });
});
