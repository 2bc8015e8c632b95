import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Spool, SpoolLostError, digestOf, keptBody, type Receipt, type SpooledRequest } from '../../src/spool/index.js';
import { ResendFilter } from '../../src/spool/resend-filter.js';
import type { SegmentFile } from '../../src/spool/spool.js';

const opts = (directory: string, segmentBytes = 1024 * 1024) => ({ directory, segmentBytes, maxBytes: 64 * 1024 * 1024, resendWindowSeconds: 600, resendMaxEntries: 1000, lockStaleMs: 2000 });
const noHooks = { fsyncSeconds: () => undefined };
const tmp = () => mkdtempSync(join(tmpdir(), 'hubble-adx-spool-'));
const settle = () => new Promise((r) => setTimeout(r, 30));
/** The segment files in `dir`, by sequence number (their names also carry the epoch that created them). */
const walFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.wal')).sort();
const seqOf = (name: string) => Number(/^segment-(\d{16})/.exec(name)![1]);
const segmentFile = (dir: string, seq: number) => join(dir, walFiles(dir).find((f) => seqOf(f) === seq)!);

/** A request as the receiver spools it, with a body that names it. */
function request(name: string, pad = 0): SpooledRequest {
  const kept = keptBody('', Buffer.from(`{"log":"${name}${'x'.repeat(pad)}"}\n`));
  return { format: 'json_lines', encoding: kept.encoding, receivedAt: 1_795_161_600_000, body: kept.body, aggregateAllowed: false, countedBefore: false, digest: digestOf('json_lines', kept) };
}

async function append(s: Spool, r: SpooledRequest): Promise<Receipt> {
  const a = await s.appendRequest(r);
  if (!a.receipt) throw new Error('taken for a resend');
  return a.receipt;
}

/**
 * Open the directory as the next process would after a kill -9: the dead process's lock is left
 * behind, stale (its last refresh 10 s ago). The spool object of the "dead" process in this test
 * loses its lock and answers nothing more, as a frozen process that resumes would.
 */
async function reopen(dir: string, hooks = noHooks): Promise<Spool> {
  const lock = join(dir, 'spool.lock');
  rmSync(lock, { recursive: true, force: true });
  mkdirSync(lock);
  const then = new Date(Date.now() - 3000);
  utimesSync(lock, then, then);
  return Spool.open(opts(dir), hooks);
}

/** What the recovered requests say (their bodies decoded). */
async function recoveredNames(s: Spool): Promise<string[]> {
  const { brotliDecompressSync } = await import('node:zlib');
  const out: string[] = [];
  for (const r of s.recovered.records) {
    if (r.kind !== 'request') continue;
    const req = (await s.readRequest(r.receipt))!;
    out.push(/"log":"([a-z0-9-]+?)x*"/.exec(brotliDecompressSync(req.body).toString())![1]!);
  }
  return out;
}

describe('spool: the write-ahead log owns its lifecycle', () => {
  it('what was appended and not settled is recovered after a crash, in order; settled records are not', async () => {
    const dir = tmp();
    const a = await Spool.open(opts(dir), noHooks);
    const r1 = await append(a, request('one'));
    const r2 = await append(a, request('two'));
    await append(a, request('three'));
    r1.expect(2);
    r1.made();
    r1.delivered(2);
    r2.made(); // nothing expected: settled at once
    await settle();
    // no close: as after kill -9 (the lock goes stale; here the next open takes it over)
    const b = await reopen(dir);
    expect(await recoveredNames(b)).toEqual(['three']);
    expect(b.recovered.usedBefore).toBe(true);
    expect(b.recovered.cleanStop).toBeNull();
    // When the dead process's lock was last refreshed: the next run closes its last window there.
    expect(b.recovered.lastAlive).toBeLessThan(Date.now() - 2000);
  });

  it('appends that arrive together share one flush (group commit)', async () => {
    const dir = tmp();
    let flushes = 0;
    const s = await Spool.open(opts(dir), { fsyncSeconds: () => flushes++ });
    await Promise.all(Array.from({ length: 50 }, (_, i) => append(s, request(`g${i}`))));
    expect(flushes).toBeLessThanOrEqual(2);
    await s.close();
  });

  it('a body already in the spool, or delivered within the window, is a resend; across a restart too', async () => {
    const dir = tmp();
    const s = await Spool.open(opts(dir), noHooks);
    const first = await append(s, request('same'));
    expect((await s.appendRequest(request('same'))).resend).toBe(true);
    // The same body arriving while the first is being appended waits for it, and is a resend too.
    const [x, y] = await Promise.all([s.appendRequest(request('twin')), s.appendRequest(request('twin'))]);
    expect([x.resend ?? false, y.resend ?? false].sort()).toEqual([false, true]);
    first.made();
    await s.close({ stoppedAt: Date.now() });
    const again = await Spool.open(opts(dir), noHooks);
    expect((await again.appendRequest(request('same'))).resend).toBe(true);
    expect((await again.appendRequest(request('twin'))).resend).toBe(true);
    expect((await again.appendRequest(request('new'))).resend).toBeUndefined();
    await again.close();
  });

  it('the digest of a delivered body reaches the resend log before the acknowledgement that lets its record go: on a full disk, a kill -9 in between never lets a resend be made into rows again', async () => {
    const dir = tmp();
    const s = await Spool.open(opts(dir), noHooks);
    const r = await append(s, request('once'));
    const full = vi.spyOn(ResendFilter.prototype, 'record').mockRejectedValue(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    r.made();
    await settle();
    const ack = segmentFile(dir, 0).replace(/\.wal$/, '.ack');
    expect(existsSync(ack) ? readFileSync(ack, 'utf8').trim() : '').toBe('');
    full.mockRestore();
    // kill -9 now: the record is still in the spool, so Fluent Bit's resend is recognised.
    const b = await reopen(dir);
    expect(await recoveredNames(b)).toEqual(['once']);
    expect((await b.appendRequest(request('once'))).resend).toBe(true);
    await b.close();
    void s;
  });

  it('a resend log that cannot be written for another reason holds no acknowledgement back: the failure is reported and the spool empties', async () => {
    const dir = tmp();
    const failures: unknown[] = [];
    const s = await Spool.open(opts(dir, 4096), { fsyncSeconds: () => undefined, resendLogFailed: (err) => failures.push(err) });
    const log = join(dir, 'resends.log');
    rmSync(log, { force: true });
    mkdirSync(log); // EISDIR at every append, for good
    const receipts: Receipt[] = [];
    for (let i = 0; i < 20; i++) receipts.push(await append(s, { ...request(`r${i}`), body: randomBytes(1024) }));
    for (const r of receipts) r.made();
    await settle();
    expect(failures.length).toBeGreaterThan(0);
    expect((failures[0] as NodeJS.ErrnoException).code).toBe('EISDIR');
    // Every sealed segment settled and went (the active one, if any, is all that is left).
    expect(walFiles(dir).length).toBeLessThanOrEqual(1);
    await s.close();
  });

  it('a segment is deleted once sealed and every record in it settled; the active one never', async () => {
    const dir = tmp();
    const wal = () => readdirSync(dir).filter((f) => f.endsWith('.wal'));
    const s = await Spool.open(opts(dir, 64 * 1024), noHooks);
    const small = await append(s, request('small'));
    small.made();
    await settle();
    // Every record in it settled, but it is the active segment: kept.
    expect(wal()).toHaveLength(1);
    expect(s.oldestPosition).toBe(small.position);
    // A record that takes it past spool.segmentBytes seals it; one of its records is still open.
    const big = await append(s, { ...request('big'), encoding: 'gzip', body: randomBytes(70 * 1024) });
    await settle();
    expect(wal()).toHaveLength(1);
    big.made();
    await settle();
    expect(wal()).toEqual([]);
    expect(s.bytes).toBe(0);
    // Nothing appended so far can be read again: the oldest position is past all of it.
    expect(s.oldestPosition).toBeGreaterThan(big.position);
    await s.close();
  });

  it('new appends after a crash go to a new segment numbered from the directory, never into the dead process\'s one', async () => {
    const dir = tmp();
    const a = await Spool.open(opts(dir), noHooks);
    const old = await append(a, request('old'));
    const b = await reopen(dir);
    const fresh = await append(b, request('fresh'));
    expect(walFiles(dir).map(seqOf)).toEqual([0, 1]);
    // The recovered record settles: its segment (sealed by recovery) goes; the new one stays.
    b.recovered.records.find((r) => r.kind === 'request')!.receipt.made();
    await settle();
    expect(walFiles(dir).map(seqOf)).toEqual([1]);
    void old;
    void fresh;
  });

  it('a torn tail (last segment cut at any byte) is cut off; every whole record before it is kept', async () => {
    for (let trial = 0; trial < 12; trial++) {
      const dir = tmp();
      const s = await Spool.open(opts(dir), noHooks);
      const sizes: number[] = [];
      for (let i = 0; i < 5; i++) {
        await append(s, request(`t${i}`));
        sizes.push(statSync(segmentFile(dir, 0)).size);
      }
      await s.close();
      const path = segmentFile(dir, 0);
      const cut = 1 + Math.floor(Math.random() * (sizes[4]! - 1));
      truncateSync(path, cut);
      const b = await Spool.open(opts(dir), noHooks);
      const whole = sizes.filter((n) => n <= cut).length;
      expect(await recoveredNames(b)).toEqual(['t0', 't1', 't2', 't3', 't4'].slice(0, whole));
      expect(b.recovered.cut.map((c) => c.reason)).toEqual(sizes.includes(cut) ? [] : ['torn']);
      await b.close();
    }
  });

  it('a corrupt record (bad checksum) is reported, cut, and never read', async () => {
    const dir = tmp();
    const s = await Spool.open(opts(dir), noHooks);
    for (let i = 0; i < 3; i++) await append(s, request(`c${i}`));
    const path = segmentFile(dir, 0);
    const third = statSync(path).size;
    await append(s, request('bad'));
    await s.close();
    const buf = readFileSync(path);
    buf[third + 30] = buf[third + 30]! ^ 0xff;
    writeFileSync(path, buf);
    const b = await Spool.open(opts(dir), noHooks);
    expect(await recoveredNames(b)).toEqual(['c0', 'c1', 'c2']);
    expect(b.recovered.cut.map((c) => [c.reason, c.offset])).toEqual([['corrupt', third]]);
    await b.close();
  });

  it('a write that fails part-way (ENOSPC) takes the segment back to its last whole record: the request is refused, the next lands where it should', async () => {
    const dir = tmp();
    let failNext = false;
    const createSegment = async (path: string): Promise<SegmentFile> => {
      const h = await open(path, 'ax', 0o600);
      return {
        writev: async (parts: Buffer[]) => {
          if (!failNext) return h.writev(parts);
          failNext = false;
          // Half of the bytes reach the file, then the disk is full.
          const all = Buffer.concat(parts);
          await h.write(all.subarray(0, all.length >> 1));
          throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        },
        datasync: () => h.datasync(),
        truncate: (n?: number) => h.truncate(n),
        close: () => h.close(),
      } as SegmentFile;
    };
    const s = await Spool.open(opts(dir), { fsyncSeconds: () => undefined, createSegment });
    await append(s, request('before'));
    failNext = true;
    await expect(s.appendRequest(request('refused'))).rejects.toThrow(/no space/);
    // The refused body is not taken for a resend when Fluent Bit sends it again.
    expect((await s.appendRequest(request('refused'))).resend).toBeUndefined();
    await append(s, request('after'));
    // kill -9 now: every record answered is there, nothing torn in between.
    const b = await reopen(dir);
    expect(b.recovered.cut).toEqual([]);
    expect(await recoveredNames(b)).toEqual(['before', 'refused', 'after']);
  });

  it('a later start taking the next epoch closes this spool at its next flush: appends are refused, `lost` resolves', async () => {
    const dir = tmp();
    const s = await Spool.open(opts(dir), noHooks);
    // Settled: a close would delete its segment, were the directory still this process's.
    (await append(s, request('mine'))).made();
    mkdirSync(join(dir, 'epochs', '2'));
    await expect(s.appendRequest(request('after-takeover'))).rejects.toThrow(SpoolLostError);
    await expect(s.lost).resolves.toBeInstanceOf(Error);
    expect(s.closed).toBe(true);
    await expect(s.appendRequest(request('later'))).rejects.toThrow();
    // Closing it then takes nothing from the new owner: its lock, the segments it reads.
    const before = walFiles(dir);
    await s.close({ stoppedAt: 1 });
    expect(statSync(join(dir, 'spool.lock')).isDirectory()).toBe(true);
    expect(walFiles(dir)).toEqual(before);
    expect(readdirSync(dir)).not.toContain('stopped-cleanly.json');
  });

  it('what a process that lost the spool still wrote (frozen past the lock, then resumed) is never read by a later start', async () => {
    const dir = tmp();
    const a = await Spool.open(opts(dir), noHooks);
    await append(a, request('a1'));
    const [aFile] = walFiles(dir);
    expect(aFile).toMatch(/-e1\.wal$/);
    const aRecord = readFileSync(join(dir, aFile!));
    // B takes the directory over while A is frozen, and reads A's segment as it is.
    const b = await reopen(dir);
    expect(await recoveredNames(b)).toEqual(['a1']);
    // A resumes and finishes the group commit it was in: its record is on disk, but A finds the
    // later epoch and answers nothing; a flush that had sealed its segment would have made a new one.
    await expect(a.appendRequest(request('late'))).rejects.toThrow(SpoolLostError);
    expect(statSync(join(dir, aFile!)).size).toBeGreaterThan(aRecord.length);
    writeFileSync(join(dir, `segment-${String(7).padStart(16, '0')}-e1.wal`), aRecord);
    await append(b, request('b1'));
    // B dies; C finds A's first record and B's, nothing A wrote after B read the directory.
    const c = await reopen(dir);
    expect(await recoveredNames(c)).toEqual(['a1', 'b1']);
    expect(c.recovered.cut.map((x) => x.reason)).toEqual(['stray', 'stray']);
    expect(statSync(join(dir, aFile!)).size).toBe(aRecord.length);
    expect(walFiles(dir).map(seqOf)).toEqual([0, 1]);
    await c.close();
  });

  it('without a readable fence nothing is deleted: every segment is read whole, and the start says so', async () => {
    const dir = tmp();
    const a = await Spool.open(opts(dir), noHooks);
    await append(a, request('a1'));
    writeFileSync(join(dir, 'epochs', '1', 'fence.json'), '{"epoch":');
    const b = await reopen(dir);
    expect(await recoveredNames(b)).toEqual(['a1']);
    expect(b.recovered.cut.map((x) => x.reason)).toEqual(['fence_unreadable']);
    await b.close();
    void a;
  });

  it('an acknowledgement cut short (a full disk) and followed by the next one lets no record go; whole ones, and the decimal lines of earlier versions, do', async () => {
    const dir = tmp();
    const s = await Spool.open(opts(dir), noHooks);
    const r = [await append(s, request('r0')), await append(s, request('r1')), await append(s, request('r2')), await append(s, request('r3'))];
    const ack = segmentFile(dir, 0).replace(/\.wal$/, '.ack');
    const line = (x: Receipt) => `~${(x.position % 2 ** 32).toString(16).padStart(12, '0')}\n`;
    // r0 acknowledged; r1's line torn after 5 characters, then r2's appended after it; r3's in the old decimal form.
    writeFileSync(ack, line(r[0]!) + line(r[1]!).slice(0, 5) + line(r[2]!) + `${r[3]!.position % 2 ** 32}\n`);
    const b = await reopen(dir);
    expect(await recoveredNames(b)).toEqual(['r1', 'r2']);
    await b.close();
    void s;
  });

  it('acknowledgements reach the disk in the order records settled: one that cannot be written holds back the later ones, then goes first', async () => {
    const dir = tmp();
    // Segments of one record each (a record past segmentBytes seals its segment).
    const s = await Spool.open(opts(dir, 64 * 1024), noHooks);
    const big = (name: string) => ({ ...request(name), encoding: 'gzip', body: randomBytes(70 * 1024) });
    const [r0, r1] = [await append(s, big('r0')), await append(s, big('r1'))];
    await append(s, request('open')); // the active segment, never deleted
    const ack0 = segmentFile(dir, 0).replace(/\.wal$/, '.ack');
    mkdirSync(ack0); // r0's acknowledgement cannot be written
    r0.made();
    r1.made();
    await settle();
    // r1's segment is settled, but neither its acknowledgement nor its removal may pass r0's.
    expect(walFiles(dir).map(seqOf)).toEqual([0, 1, 2]);
    rmSync(ack0, { recursive: true });
    await new Promise((r) => setTimeout(r, 1300));
    expect(walFiles(dir).map(seqOf)).toEqual([2]);
    await s.close();
  });

  it('a second process cannot open a directory whose lock is fresh, and says which key', async () => {
    const dir = tmp();
    const s = await Spool.open(opts(dir), noHooks);
    await expect(Spool.open(opts(dir), noHooks)).rejects.toThrow(/spool\.directory: cannot lock .*another hubble-adx process holds it/);
    await s.close();
  }, 20_000);

  it('a clean stop leaves a marker the next start reads and removes; a crash leaves none', async () => {
    const dir = tmp();
    const s = await Spool.open(opts(dir), noHooks);
    await s.close({ runId: 'r1', stoppedAt: 123 });
    const b = await Spool.open(opts(dir), noHooks);
    expect(b.recovered.cleanStop).toEqual({ runId: 'r1', stoppedAt: 123 });
    expect(readdirSync(dir)).not.toContain('stopped-cleanly.json');
    const c = await reopen(dir); // b died without a stop
    expect(c.recovered.cleanStop).toBeNull();
    expect(c.recovered.lastAlive).not.toBeNull();
  });

  it('creates its files 0600 in a 0700 directory', async () => {
    const dir = join(tmp(), 'spool');
    const s = await Spool.open(opts(dir), noHooks);
    await append(s, request('private'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(segmentFile(dir, 0)).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'epochs', '1', 'fence.json')).mode & 0o777).toBe(0o600);
    await s.close();
  });

  it('reads the request records an earlier version wrote (SHA-256 framed "HAS1", layout 2), so an upgrade loses nothing', async () => {
    const dir = tmp();
    const body = Buffer.from('{"log":"v1"}\n');
    const head = Buffer.alloc(1 + 1 + 10 + 1 + 0 + 8 + 1);
    let o = head.writeUInt8(2, 0);
    o = head.writeUInt8(10, o);
    o += head.write('json_lines', o, 'latin1');
    o = head.writeUInt8(0, o);
    o = head.writeDoubleBE(5, o);
    head.writeUInt8(1, o); // counted when it came (the old "processed" flag)
    const payload = Buffer.concat([head, body]);
    const frame = Buffer.alloc(16);
    frame.writeUInt32BE(0x48415331, 0);
    frame.writeUInt32BE(payload.length, 4);
    frame.writeUInt32BE(createHash('sha256').update(payload).digest().readUInt32BE(0), 8);
    frame.writeUInt8(0xff, 12);
    writeFileSync(join(dir, 'segment-0000000000000000.wal'), Buffer.concat([frame, payload]));
    const s = await Spool.open(opts(dir), noHooks);
    expect(s.recovered.cut).toEqual([]);
    const r = s.recovered.records[0]!;
    expect(r).toMatchObject({ kind: 'request', receivedAt: 5, countedBefore: true });
    expect((await s.readRequest(r.receipt))!.body.toString()).toBe('{"log":"v1"}\n');
    await s.close();
  });
});
