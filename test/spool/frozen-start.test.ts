/**
 * A process frozen while it starts (after it took its epoch, before it listed the directory)
 * resumes after a later start took the spool over and answered 200s. It must touch nothing the
 * later start wrote, and fail with SpoolLostError (the CLI exits 75).
 *
 * The freeze is made deterministic by holding the frozen start inside ResendFilter.load (the step
 * between takeEpoch and recover's readdir in Spool.open); bench/attack/frozen-start.ts lands a real
 * SIGSTOP there on the built CLI.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Spool, SpoolLostError, digestOf, keptBody, type Receipt, type SpooledRequest } from '../../src/spool/index.js';
import { ResendFilter } from '../../src/spool/resend-filter.js';

const opts = (directory: string) => ({ directory, segmentBytes: 1024 * 1024, maxBytes: 64 * 1024 * 1024, resendWindowSeconds: 600, resendMaxEntries: 1000, lockStaleMs: 2000 });
const noHooks = { fsyncSeconds: () => undefined };
const walFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.wal')).sort();

function request(name: string): SpooledRequest {
  const kept = keptBody('', Buffer.from(`{"log":"${name}"}\n`));
  return { format: 'json_lines', encoding: kept.encoding, receivedAt: 1_795_161_600_000, body: kept.body, aggregateAllowed: false, countedBefore: false, digest: digestOf('json_lines', kept) };
}

async function append(s: Spool, r: SpooledRequest): Promise<Receipt> {
  const a = await s.appendRequest(r);
  if (!a.receipt) throw new Error('taken for a resend');
  return a.receipt;
}

/** The lock as a killed (or frozen) holder leaves it: stale, so the next open takes it over. */
function staleLock(dir: string): void {
  const lock = join(dir, 'spool.lock');
  rmSync(lock, { recursive: true, force: true });
  mkdirSync(lock);
  const then = new Date(Date.now() - 3000);
  utimesSync(lock, then, then);
}

async function names(s: Spool): Promise<string[]> {
  const out: string[] = [];
  for (const r of s.recovered.records) {
    if (r.kind !== 'request') continue;
    const req = await s.readRequest(r.receipt);
    out.push(req ? /"log":"([^"]+)"/.exec(brotliDecompressSync(req.body).toString())![1]! : '<gone>');
  }
  return out;
}

afterEach(() => vi.restoreAllMocks());

/** Starts a spool that freezes inside its start (after its epoch) until thawed. */
async function frozenStart(dir: string): Promise<{ thaw: () => void; result: Promise<Spool | Error> }> {
  let thaw!: () => void;
  const frozen = new Promise<void>((r) => (thaw = r));
  const load = ResendFilter.prototype.load;
  const spy = vi.spyOn(ResendFilter.prototype, 'load').mockImplementationOnce(async function (this: ResendFilter, now: number) {
    await frozen;
    return load.call(this, now);
  });
  const result = Spool.open(opts(dir), noHooks).then(
    (s) => s,
    (e: unknown) => e as Error,
  );
  for (let i = 0; i < 200 && spy.mock.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(spy).toHaveBeenCalled();
  return { thaw, result };
}

describe('a start frozen before it lists the directory, resumed after a later start took the spool', () => {
  it('keeps every segment the later start wrote, and fails with SpoolLostError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-frozen-'));
    try {
      // Run 1 (epoch 1) writes a fence and dies with a record in the spool.
      const first = await Spool.open(opts(dir), noHooks);
      await append(first, request('old'));
      staleLock(dir);

      const a = await frozenStart(dir);
      expect(readdirSync(join(dir, 'epochs'))).toContain('2');

      // Its lock goes stale meanwhile: run 3 (epoch 3) takes the spool, recovers, and answers a request.
      staleLock(dir);
      const b = await Spool.open(opts(dir), noHooks);
      await append(b, request('answered-by-run-3'));
      const bSegment = walFiles(dir).find((f) => f.endsWith('-e3.wal'))!;
      expect(bSegment).toBeDefined();

      a.thaw();
      const resumed = await a.result;
      expect(resumed).toBeInstanceOf(SpoolLostError);
      expect((resumed as Error).message).toMatch(/a later start \(epoch 3\)/);

      // Run 3's segment is still there, and a later start finds both records.
      expect(walFiles(dir)).toContain(bSegment);
      staleLock(dir);
      const c = await Spool.open(opts(dir), noHooks);
      expect(await names(c)).toEqual(['old', 'answered-by-run-3']);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with SpoolLostError when the later start has taken its epoch but written nothing yet', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-frozen-'));
    try {
      const first = await Spool.open(opts(dir), noHooks);
      await append(first, request('old'));
      staleLock(dir);
      const a = await frozenStart(dir);
      mkdirSync(join(dir, 'epochs', '3'));
      a.thaw();
      expect(await a.result).toBeInstanceOf(SpoolLostError);
      rmSync(join(dir, 'epochs', '3'), { recursive: true });
      staleLock(dir);
      const c = await Spool.open(opts(dir), noHooks);
      expect(await names(c)).toEqual(['old']);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
