import { mkdtempSync, readdirSync, statSync, truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { brotliDecompressSync } from 'node:zlib';
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
    await Promise.all([a.appendRows('flows', rows('f', 3)), a.appendRows('events', rows('e', 1))]);
    await a.appendRows('deadLetters', rows('d', 2));
    // no ack, no close: as after kill -9
    const { out } = await replayAll(dir);
    expect(out.map((r) => [r.table, r.rows.length])).toEqual([['flows', 3], ['events', 1], ['deadLetters', 2]]);
    expect((out[0]!.rows[2] as { Uuid: string }).Uuid).toBe('f-2');
  });

  it('a request is spooled as received and replayed whole; acknowledged once its rows are', async () => {
    const dir = tmp();
    const a = new Spool(opts(dir), noHooks);
    const body = Buffer.from([0x1f, 0x8b, 0, 1, 2, 3, 0xff]);
    const kept = a.issue();
    await a.appendRequest(kept, { format: 'msgpack', encoding: 'gzip', receivedAt: 1_795_161_600_123.5, body, processed: true }, 3);
    await a.appendRequest(a.issue(), { format: 'json_lines', encoding: '', receivedAt: 1, body: Buffer.from('{"log":"x"}\n'), processed: false }, 1);
    kept.ack(2);
    await new Promise((r) => setTimeout(r, 20));
    expect((await replayAll(dir)).requests).toHaveLength(2); // one row of three still out: both kept
    kept.ack(1);
    await new Promise((r) => setTimeout(r, 20));
    const { spool, out, requests } = await replayAll(dir); // no close: as after kill -9
    expect(out).toEqual([]);
    // A plain body is kept compressed (brotli), a gzipped one as it came.
    expect(requests.map((r) => ({ ...r.request, body: brotliDecompressSync(r.request.body) }))).toEqual([{ format: 'json_lines', encoding: 'br', receivedAt: 1, body: Buffer.from('{"log":"x"}\n'), processed: false }]);
    // Replay makes the rows again and says how many; with none, the record is done at once.
    spool.expect(requests[0]!.token, 0);
    await spool.close();
    expect((await replayAll(dir)).requests).toEqual([]);
  });

  it('records acknowledged before a crash are not replayed (their offsets are in the .ack file)', async () => {
    const dir = tmp();
    const a = new Spool(opts(dir), noHooks);
    const r1 = await a.appendRows('flows', rows('acked', 2));
    await a.appendRows('flows', rows('pending', 2));
    const r3 = await a.appendRows('flows', rows('half', 2));
    r1.ack(2);
    r3.ack(1); // one row of two: the record is still pending
    await new Promise((r) => setTimeout(r, 20));
    const { out } = await replayAll(dir); // no close: as after kill -9
    expect(out.map((r) => (r.rows[0] as { Uuid: string }).Uuid)).toEqual(['pending-0', 'half-0']);
  });

  it('appends that arrive together share one flush (group commit)', async () => {
    const dir = tmp();
    let flushes = 0;
    const s = new Spool(opts(dir), { fsyncSeconds: () => flushes++ });
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.appendRows('flows', rows(`g${i}`, 1))));
    expect(flushes).toBeLessThanOrEqual(2);
  });

  it('a segment is deleted once sealed and fully acknowledged, never before', async () => {
    const dir = tmp();
    const s = new Spool(opts(dir, 4096), noHooks);
    const r1 = await s.appendRows('flows', rows('a', 40)); // > 4 KiB: seals its segment
    const r2 = await s.appendRows('flows', rows('b', 2));
    expect(readdirSync(dir)).toHaveLength(2);
    r1.ack(39);
    await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(dir)).toHaveLength(2);
    r1.ack(1);
    await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(dir)).toHaveLength(1);
    r2.ack(2);
    await s.close();
    expect(readdirSync(dir)).toEqual([]);
    expect(s.bytes).toBe(0);
  });

  it('a torn tail (last segment cut at any byte) is cut off; every whole record before it is kept', async () => {
    for (let trial = 0; trial < 25; trial++) {
      const dir = tmp();
      const s = new Spool(opts(dir), noHooks);
      for (let i = 0; i < 5; i++) await s.appendRows('flows', rows(`t${i}`, 3));
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
    for (let i = 0; i < 3; i++) await s.appendRows('flows', rows(`c${i}`, 1));
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
    await a.appendRows('flows', rows('old', 2));
    const { spool: b, out } = await replayAll(dir);
    await b.appendRows('flows', rows('new', 1));
    expect(readdirSync(dir).sort()).toHaveLength(2);
    b.expect(out[0]!.token, 2);
    out[0]!.token.ack(2);
    await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('a request whose CRI partial line a later request finished stays until that request is delivered', async () => {
    const dir = tmp();
    const s = new Spool(opts(dir), noHooks);
    const request = (n: number) => ({ format: 'json_lines', encoding: '', receivedAt: n, body: Buffer.from(`{"log":"${n}"}\n`), processed: true });
    // The first request made 1 row and started a line still waiting for its final piece.
    const first = s.issue();
    first.pendingLines = 1;
    await s.appendRequest(first, request(1), 1);
    first.ack(1);
    // The second finished that line: the first is kept until the second is delivered.
    const second = s.issue();
    await s.appendRequest(second, request(2), 2);
    s.keepUntilDelivered([first], second);
    await new Promise((r) => setTimeout(r, 20));
    expect((await replayAll(dir)).requests.map((r) => r.request.receivedAt)).toEqual([1, 2]);
    second.ack(2);
    await new Promise((r) => setTimeout(r, 20));
    expect((await replayAll(dir)).requests).toEqual([]);
  });

  it('a request whose append failed is not in the spool, and what it is told later changes nothing', async () => {
    const dir = tmp();
    const s = new Spool(opts(dir), noHooks);
    await s.close();
    const lost = s.issue();
    lost.pendingLines = 1;
    await expect(s.appendRequest(lost, { format: 'json_lines', encoding: '', receivedAt: 1, body: Buffer.from('{}\n'), processed: true }, 1)).rejects.toThrow(/closed/);
    lost.ack(2);
    const otherDir = tmp();
    const other = new Spool(opts(otherDir), noHooks);
    const later = other.issue();
    await other.appendRequest(later, { format: 'json_lines', encoding: '', receivedAt: 2, body: Buffer.from('{}\n'), processed: true }, 1);
    other.keepUntilDelivered([lost], later);
    later.ack(1);
    await other.close();
    expect(readdirSync(otherDir)).toEqual([]);
  });

  it('reads the records an earlier version wrote (SHA-256 framed "HAS1"), so an upgrade loses nothing', async () => {
    const dir = tmp();
    const payload = Buffer.from(JSON.stringify(rows('v1', 2)));
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x48415331, 0);
    header.writeUInt32BE(payload.length, 4);
    header.writeUInt32BE(createHash('sha256').update(payload).digest().readUInt32BE(0), 8);
    header.writeUInt8(0, 12); // flows
    writeFileSync(join(dir, 'segment-0000000000000000.wal'), Buffer.concat([header, payload]));
    const { out, problems } = await replayAll(dir);
    expect(problems).toEqual([]);
    expect(out.map((r) => [r.table, (r.rows[1] as { Uuid: string }).Uuid])).toEqual([['flows', 'v1-1']]);
  });
});
