import { mkdtempSync, readdirSync, statSync, truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool, type ReplayedRecord } from '../../src/spool/index.js';

const opts = (directory: string, segmentBytes = 1024 * 1024) => ({ directory, segmentBytes, maxBytes: 64 * 1024 * 1024 });
const noHooks = { fsyncSeconds: () => undefined };
const tmp = () => mkdtempSync(join(tmpdir(), 'hubble-adx-spool-'));
const rows = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ Uuid: `${prefix}-${i}`, Pad: 'x'.repeat(100) }));

type RowsRecord = Extract<ReplayedRecord, { kind: 'rows' }>;
type RequestRecord = Extract<ReplayedRecord, { kind: 'request' }>;

async function replayAll(dir: string, segmentBytes?: number) {
  const spool = new Spool(opts(dir, segmentBytes), noHooks);
  const out: RowsRecord[] = [];
  const requests: RequestRecord[] = [];
  const problems: string[] = [];
  for await (const r of spool.replay((_f, offset, reason) => problems.push(`${reason}@${offset}`))) {
    if (r.kind === 'rows') out.push(r);
    else requests.push(r);
  }
  return { spool, out, requests, problems };
}

describe('spool (write-ahead log)', () => {
  it('what was appended and not acknowledged is replayed after a restart, in order, by table', async () => {
    const dir = tmp();
    const a = new Spool(opts(dir), noHooks);
    await Promise.all([a.append('flows', rows('f', 3)), a.append('events', rows('e', 1))]);
    await a.append('deadLetters', rows('d', 2));
    // no ack, no close: as after kill -9
    const { out } = await replayAll(dir);
    expect(out.map((r) => [r.table, r.rows.length])).toEqual([['flows', 3], ['events', 1], ['deadLetters', 2]]);
    expect((out[0]!.rows[2] as { Uuid: string }).Uuid).toBe('f-2');
  });

  it('a request is spooled as received and replayed whole; acknowledged once its rows are', async () => {
    const dir = tmp();
    const a = new Spool(opts(dir), noHooks);
    const body = Buffer.from([0x1f, 0x8b, 0, 1, 2, 3, 0xff]);
    const kept = await a.appendRequest({ format: 'msgpack', encoding: 'gzip', receivedAt: 1_795_161_600_123.5, body, processed: true }, 3, 4096);
    await a.appendRequest({ format: 'json_lines', encoding: '', receivedAt: 1, body: Buffer.from('{"log":"x"}\n'), processed: false }, 1, 12);
    expect(kept).toMatchObject({ rows: 3, remaining: 3, bytes: 4096 });
    a.ack(kept, 3);
    await new Promise((r) => setTimeout(r, 20));
    const { spool, out, requests } = await replayAll(dir); // no close: as after kill -9
    expect(out).toEqual([]);
    expect(requests.map((r) => r.request)).toEqual([{ format: 'json_lines', encoding: '', receivedAt: 1, body: Buffer.from('{"log":"x"}\n'), processed: false }]);
    // Replay makes the rows again and says how many; with none, the record is done at once.
    spool.expect(requests[0]!.record, 0, 12);
    await spool.close();
    expect((await replayAll(dir)).requests).toEqual([]);
  });

  it('records acknowledged before a crash are not replayed (their offsets are in the .ack file)', async () => {
    const dir = tmp();
    const a = new Spool(opts(dir), noHooks);
    const r1 = await a.append('flows', rows('acked', 2));
    await a.append('flows', rows('pending', 2));
    const r3 = await a.append('flows', rows('half', 2));
    a.ack(r1, 2);
    a.ack(r3, 1); // one row of two: the record is still pending
    await new Promise((r) => setTimeout(r, 20));
    const { out } = await replayAll(dir); // no close: as after kill -9
    expect(out.map((r) => (r.rows[0] as { Uuid: string }).Uuid)).toEqual(['pending-0', 'half-0']);
  });

  it('appends that arrive together share one flush (group commit)', async () => {
    const dir = tmp();
    let flushes = 0;
    const s = new Spool(opts(dir), { fsyncSeconds: () => flushes++ });
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.append('flows', rows(`g${i}`, 1))));
    expect(flushes).toBeLessThanOrEqual(2);
  });

  it('a segment is deleted once sealed and fully acknowledged, never before', async () => {
    const dir = tmp();
    const s = new Spool(opts(dir, 4096), noHooks);
    const r1 = await s.append('flows', rows('a', 40)); // > 4 KiB: seals its segment
    const r2 = await s.append('flows', rows('b', 2));
    expect(readdirSync(dir)).toHaveLength(2);
    s.ack(r1, 39);
    await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(dir)).toHaveLength(2);
    s.ack(r1, 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(dir)).toHaveLength(1);
    s.ack(r2, 2);
    await s.close();
    expect(readdirSync(dir)).toEqual([]);
    expect(s.bytes).toBe(0);
  });

  it('a torn tail (last segment cut at any byte) is cut off; every whole record before it is kept', async () => {
    for (let trial = 0; trial < 25; trial++) {
      const dir = tmp();
      const s = new Spool(opts(dir), noHooks);
      for (let i = 0; i < 5; i++) await s.append('flows', rows(`t${i}`, 3));
      const [seg] = readdirSync(dir);
      const path = join(dir, seg!);
      const size = statSync(path).size;
      const recordSize = size / 5;
      const cut = 1 + Math.floor(Math.random() * (size - 1));
      truncateSync(path, cut);
      const { out, problems } = await replayAll(dir);
      const whole = Math.floor(cut / recordSize);
      expect(out).toHaveLength(whole);
      expect(out.flatMap((r) => r.rows.map((x) => (x as { Uuid: string }).Uuid)).slice(0, 3)).toEqual(whole > 0 ? ['t0-0', 't0-1', 't0-2'] : []);
      expect(problems).toEqual(cut % recordSize === 0 ? [] : [`torn@${whole * recordSize}`]);
      if (whole > 0) expect(statSync(path).size).toBe(whole * recordSize);
    }
  });

  it('a corrupt record (bad checksum) is reported, cut, and never read as rows', async () => {
    const dir = tmp();
    const s = new Spool(opts(dir), noHooks);
    for (let i = 0; i < 3; i++) await s.append('flows', rows(`c${i}`, 1));
    const [seg] = readdirSync(dir);
    const path = join(dir, seg!);
    const buf = readFileSync(path);
    const third = (buf.length / 3) * 2;
    buf[third + 30] = buf[third + 30]! ^ 0xff; // flip a payload byte of the third record
    writeFileSync(path, buf);
    const { out, problems } = await replayAll(dir);
    expect(out.map((r) => (r.rows[0] as { Uuid: string }).Uuid)).toEqual(['c0-0', 'c1-0']);
    expect(problems).toEqual([`corrupt@${third}`]);
  });

  it('new appends after a restart go to a new segment, and replayed segments are freed once acknowledged', async () => {
    const dir = tmp();
    const a = new Spool(opts(dir), noHooks);
    await a.append('flows', rows('old', 2));
    const { spool: b, out } = await replayAll(dir);
    await b.append('flows', rows('new', 1));
    expect(readdirSync(dir).sort()).toHaveLength(2);
    b.ack(out[0]!.record, 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(dir)).toHaveLength(1);
  });
});
