import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { rowSink } from '../support/row-sink.js';
import type { Sink } from '../../src/sink/index.js';
import { spawnService, type Child } from '../support/child-service.js';
import { FakeAdx } from '../support/fake-adx.js';
import { startService, type Running } from '../helpers/service.js';
import { containerNodeOptions } from '../support/container-node-options.js';
import { projectRoot } from '../support/project-root.js';

const ndjson = { 'content-type': 'application/x-ndjson' };
// Padding of random text: the spool compresses plain bodies, and a run of one letter would take no room.
const flowLine = (uuid: string, pad = 0) =>
  JSON.stringify({ flow: { time: new Date().toISOString(), uuid, verdict: 'FORWARDED', ...(pad ? { Summary: randomBytes(pad).toString('base64').slice(0, pad) } : {}) }, node_name: 'c1/n1' });
const body = (uuids: string[], pad = 0) => jsonLinesBody(uuids.map((u) => ({ log: flowLine(u, pad) })));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `hubble-adx-${p}-`));

/** Post like Fluent Bit: retry on 503 (and on a refused connection) until 200, within a deadline. */
async function postUntilAccepted(url: string, b: Buffer, deadline: number, seen: number[]): Promise<boolean> {
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { method: 'POST', body: b, headers: ndjson });
      seen.push(res.status);
      if (res.status === 200) return true;
      if (res.status !== 503) throw new Error(`unexpected status ${res.status}`);
    } catch (err) {
      if ((err as Error).message.startsWith('unexpected')) throw err;
      seen.push(0);
    }
    await sleep(50);
  }
  return false;
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

describe('durability: nothing acknowledged is lost', () => {
  let adx: FakeAdx;
  const running: Running[] = [];
  const children: Child[] = [];
  beforeAll(async () => {
    adx = new FakeAdx();
    await adx.start();
  });
  afterAll(() => adx.stop());
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    await Promise.all(running.splice(0).map((s) => s.stop()));
    adx.reset();
  });

  const kustoEnv = (spool: string, extra: Record<string, string> = {}) => ({
    HUBBLE_ADX_SINK__TYPE: 'kusto',
    HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: adx.url,
    HUBBLE_ADX_SINK__KUSTO__DATABASE: 'hubble',
    HUBBLE_ADX_SINK__KUSTO__AUTH: 'none',
    HUBBLE_ADX_RETRY__MIN_DELAY_MS: '20',
    HUBBLE_ADX_RETRY__MAX_DELAY_MS: '200',
    HUBBLE_ADX_SINK__KUSTO__RETRY_MAX_ATTEMPTS: '100000',
    HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_DIRECTORY: join(spool, '..', 'dead'),
    HUBBLE_ADX_SPOOL__DIRECTORY: spool,
    HUBBLE_ADX_BATCH__MAX_AGE_MS: '100',
    HUBBLE_ADX_SERVER__RETRY_AFTER_SECONDS: '1',
    ...extra,
  });

  it('ADX down for a while: requests are parked in the spool (200, never 503 while it has room), then every acknowledged flow arrives exactly once', async () => {
    const svc = await startService({
      sink: { type: 'kusto', kusto: { clusterUrl: adx.url, database: 'hubble', auth: 'none', retryMaxAttempts: 100_000 } },
      retry: { minDelayMs: 20, maxDelayMs: 100 },
      batch: { maxAgeMs: 50, maxRows: 100, maxPendingRows: 300 },
    } as never);
    running.push(svc);
    adx.down = true;
    setTimeout(() => (adx.down = false), 1500);
    const statuses: number[] = [];
    const sent: string[] = [];
    const deadline = Date.now() + 20_000;
    for (let i = 0; i < 30; i++) {
      const uuids = Array.from({ length: 20 }, (_, j) => `down-${i}-${j}`);
      expect(await postUntilAccepted(svc.url, body(uuids), deadline, statuses)).toBe(true);
      sent.push(...uuids);
    }
    const parkedDuringOutage = await svc.metric('hubble_adx_spool_parked_requests');
    await svc.service.pipeline.flush();
    const stored = adx.table('HubbleFlows').map((r) => r.Uuid as string);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(parkedDuringOutage).toBeGreaterThan(0);
    expect(new Set(stored).size).toBe(sent.length);
    expect(stored.length).toBe(sent.length);
    expect(adx.requests.filter((r) => r.status === 503).length).toBeGreaterThan(0);
    console.log(`[ADX outage] sent ${sent.length} flows in 30 requests, ${statuses.filter((s) => s === 503).length} answers 503, ${parkedDuringOutage} requests parked, delivered ${stored.length}, distinct ${new Set(stored).size}`);
  });

  it('kill -9 under steady load, restart on the same spool: every acknowledged flow is delivered', async () => {
    const spool = join(tmp('kill'), 'spool');
    const env = kustoEnv(spool);
    const first = await spawnService(env);
    children.push(first);
    const url = `http://127.0.0.1:${first.port}/`;
    const acked: string[] = [];
    const statuses: number[] = [];
    adx.delayEachMs = 30; // ADX a little slow, so that batches are in flight when the process dies
    for (let i = 0; i < 40; i++) {
      const uuids = Array.from({ length: 25 }, (_, j) => `kill-${i}-${j}`);
      const res = await fetch(url, { method: 'POST', body: body(uuids), headers: ndjson });
      statuses.push(res.status);
      if (res.status === 200) acked.push(...uuids);
      if (i === 25) first.proc.kill('SIGKILL');
      if (i >= 25) break;
      await sleep(15);
    }
    await first.exited;
    const storedBefore = adx.table('HubbleFlows').length;
    const second = await spawnService(env, first.port);
    children.push(second);
    const ackedSet = new Set(acked);
    const all = await waitFor(() => {
      const have = new Set(adx.table('HubbleFlows').map((r) => r.Uuid as string));
      return [...ackedSet].every((u) => have.has(u));
    }, 20_000);
    const stored = adx.table('HubbleFlows').map((r) => r.Uuid as string);
    const duplicates = stored.length - new Set(stored).size;
    const replayed = await second.metric('hubble_adx_spool_replayed_rows_total');
    console.log(`[kill -9] acknowledged ${acked.length}, stored before the kill ${storedBefore}, replayed from the spool ${replayed}, delivered ${stored.length}, distinct ${new Set(stored).size}, duplicates ${duplicates}`);
    expect(all).toBe(true);
    expect(replayed).toBeGreaterThan(0);
    // Duplicates can only come from batches ADX took but whose acknowledgement the dead process never saw.
    expect(duplicates).toBeLessThanOrEqual(replayed);
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('one writer per spool: a second process on the same directory exits 1 naming spool.directory; the first goes on', async () => {
    const spool = join(tmp('lock'), 'spool');
    const first = await spawnService(kustoEnv(spool));
    children.push(first);
    const second = spawnService(kustoEnv(spool)).then(
      () => 'started',
      (err: Error) => err.message,
    );
    const outcome = await second;
    expect(outcome).toMatch(/did not start/);
    expect(outcome).toMatch(/spool\.directory: cannot lock .*another hubble-adx process holds it/);
    expect(first.proc.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${first.port}/`, { method: 'POST', body: body(['after-lock']), headers: ndjson })).status).toBe(200);
  }, 30_000);

  it('a start that fails once its ports are open (a spool segment it cannot read) exits 1 with the reason, and does not stay up answering 503', async () => {
    const spool = join(tmp('badstart'), 'spool');
    mkdirSync(join(spool, 'segment-0000000000000000.wal'), { recursive: true });
    const proc = spawn(process.execPath, [join(projectRoot(), 'dist', 'src', 'cli.js'), 'serve'], {
      env: { PATH: process.env.PATH, HUBBLE_ADX_SERVER__PORT: String(20000 + Math.floor(Math.random() * 20000)), ...kustoEnv(spool) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await Promise.race([new Promise<number | null>((r) => proc.on('exit', r)), sleep(15_000).then(() => 'still running')]);
    if (code === 'still running') proc.kill('SIGKILL');
    expect(code).toBe(1);
    expect(err).toMatch(/EISDIR/);
  }, 30_000);

  it('SIGTERM while ADX is down: exit 0 after the grace period, the rest stays in the spool and is sent after restart', async () => {
    const spool = join(tmp('term'), 'spool');
    const env = kustoEnv(spool, { HUBBLE_ADX_SHUTDOWN__GRACE_MS: '1000' });
    const first = await spawnService(env);
    children.push(first);
    adx.down = true;
    const uuids = Array.from({ length: 50 }, (_, j) => `term-${j}`);
    expect((await fetch(`http://127.0.0.1:${first.port}/`, { method: 'POST', body: body(uuids), headers: ndjson })).status).toBe(200);
    const t0 = Date.now();
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(readdirSync(spool).length).toBeGreaterThan(0);
    expect(first.logs()).toContain('grace period over');
    // Not delivered is not refused: nothing was dead-lettered for an outage.
    expect(existsSync(join(spool, '..', 'dead')) ? readdirSync(join(spool, '..', 'dead')) : []).toEqual([]);
    adx.down = false;
    const second = await spawnService(env, first.port);
    children.push(second);
    expect(await waitFor(() => adx.table('HubbleFlows').length >= 50, 10_000)).toBe(true);
    expect(adx.table('HubbleFlows').map((r) => r.Uuid).sort()).toEqual([...uuids].sort());
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // Every record delivered: no segment is left, only what a clean stop leaves (its marker, the
    // digests of delivered bodies, the epochs of the two starts with their fences).
    expect(readdirSync(spool).sort()).toEqual(['epochs', 'resends.log', 'stopped-cleanly.json']);
    expect(readdirSync(join(spool, 'epochs')).sort()).toEqual(['1', '2']);
  });

  it('spool full: 503 (spool_full) while /readyz stays ready, nothing deleted, everything accepted delivered once the sink catches up', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const delivered: string[] = [];
    const sink: Sink = rowSink('gated', async (_t, rows) => {
      await gate;
      for (const r of rows) delivered.push((r as { Uuid: string }).Uuid);
    });
    const svc = await startService({ spool: { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 }, batch: { maxAgeMs: 50 } }, sink);
    running.push(svc);
    const accepted: string[] = [];
    let refused = 0;
    let notReady = 0;
    for (let i = 0; i < 60 && refused === 0; i++) {
      if ((await fetch(`${svc.url}/readyz`)).status !== 200) notReady++;
      const uuids = Array.from({ length: 10 }, (_, j) => `full-${i}-${j}`);
      const res = await svc.post(body(uuids, 4000), ndjson);
      if (res.status === 200) accepted.push(...uuids);
      else {
        expect(res.status).toBe(503);
        expect(await res.json()).toMatchObject({ message: expect.stringContaining('spool_full') });
        refused++;
      }
    }
    expect(refused).toBe(1);
    // Backpressure is answered in band; the node-local Service keeps its endpoint.
    expect(notReady).toBe(0);
    expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
    expect(await svc.metric('hubble_adx_backpressure_responses_total', { reason: 'spool_full' })).toBe(1);
    expect(await svc.metric('hubble_adx_spool_bytes')).toBeGreaterThanOrEqual(1024 * 1024);
    release();
    await svc.service.pipeline.flush();
    expect(delivered.sort()).toEqual([...accepted].sort());
    expect((await svc.post(body(['after']), ndjson)).status).toBe(200);
  });

  it('sustained overload at 3x the sink rate: the backlog goes to the spool, 503s once it is full, and RSS stays under the budget', async () => {
    const spool = join(tmp('rss'), 'spool');
    const env = kustoEnv(spool, {
      HUBBLE_ADX_SPOOL__MAX_BYTES: String(16 * 1024 * 1024),
      HUBBLE_ADX_BATCH__MAX_ROWS: '200',
      HUBBLE_ADX_BATCH__MAX_PENDING_ROWS: '5000',
      HUBBLE_ADX_BATCH__MAX_PENDING_BYTES: String(8 * 1024 * 1024),
      // The heap limit the container image sets (Dockerfile): V8 collects before the pod's limit.
      NODE_OPTIONS: containerNodeOptions(),
    });
    const child = await spawnService(env);
    children.push(child);
    adx.delayEachMs = 100; // one lane, 200 rows per request: ADX takes ~2,000 flows/s
    const url = `http://127.0.0.1:${child.port}/`;
    let peak = 0;
    let accepted = 0;
    let refused = 0;
    const end = Date.now() + 8000;
    let i = 0;
    while (Date.now() < end) {
      // ~6,000 flows/s of ~4 KB offered (60 every 10 ms): unbounded, the backlog would pass 100 MB of text
      const uuids = Array.from({ length: 60 }, (_, j) => `rss-${i}-${j}`);
      i++;
      const res = await fetch(url, { method: 'POST', body: body(uuids, 4000), headers: ndjson });
      if (res.status === 200) accepted += 60;
      else refused++;
      if (i % 50 === 0) peak = Math.max(peak, await child.metric('hubble_adx_process_resident_memory_bytes'));
      await sleep(10);
    }
    peak = Math.max(peak, await child.metric('hubble_adx_process_resident_memory_bytes'));
    const budget = 200 * 1024 * 1024;
    const backlog = accepted - adx.table('HubbleFlows').length;
    console.log(`[overload] backlog at the end ${backlog} flows (in memory bounded by batch.maxPendingBytes 8 MB, the rest parked in the 16 MiB spool); offered ${i * 60} flows in 8 s, accepted ${accepted}, 503 answers ${refused}, delivered ${adx.table('HubbleFlows').length}, peak RSS ${(peak / 1024 / 1024).toFixed(0)} MB (budget ${budget / 1024 / 1024} MB)`);
    expect(refused).toBeGreaterThan(0);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(budget);
    expect(child.proc.exitCode).toBeNull(); // alive: it pushed back instead of running out of heap
    child.proc.kill('SIGKILL');
  });
});
