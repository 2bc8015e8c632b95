import { randomBytes } from 'node:crypto';
/**
 * An ADX outage longer than every retry bound in the configuration (timings scaled down): ADX
 * unreachable (connection refused), then answering 503, then 429, then back. Fluent Bit's side is
 * a client that retries 503s. Nothing may be dead-lettered, /readyz must stay 200, and the receiver
 * may answer 503 only once the spool is at its bound.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService } from '../helpers/service.js';
import { FakeAdx } from '../support/fake-adx.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { flowLine } from '../support/hostile-bodies.js';
import { TcpGate } from '../support/tcp-gate.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ndjson = { 'content-type': 'application/x-ndjson' };

describe('an ADX outage longer than every retry bound', () => {
  let adx: FakeAdx;
  let gate: TcpGate;
  beforeAll(async () => {
    adx = new FakeAdx();
    await adx.start();
    gate = new TcpGate(Number(new URL(adx.url).port));
    await gate.open();
  });
  afterAll(async () => {
    await gate.close();
    await adx.stop();
  });

  it('refused, then 503, then 429, then back: every accepted flow arrives, nothing is dead-lettered, /readyz stays 200, 503 only at the spool bound', async () => {
    const spoolMaxBytes = 1024 * 1024;
    const dead = mkdtempSync(join(tmpdir(), 'hubble-adx-outage-dl-'));
    const svc = await startService({
      sink: {
        type: 'kusto',
        kusto: {
          clusterUrl: `http://127.0.0.1:${gate.port}`, database: 'hubble', auth: 'none', deadLetterDirectory: dead,
          // Every bound far shorter than the outage.
          retryMaxAttempts: 2, retryMaxAgeMs: 1000, requestTimeoutMs: 1000,
        },
      },
      retry: { minDelayMs: 20, maxDelayMs: 200 },
      batch: { maxAgeMs: 100, maxRows: 100, maxPendingRows: 300 },
      spool: { maxBytes: spoolMaxBytes, segmentBytes: 64 * 1024 },
      server: { retryAfterSeconds: 1 },
    } as never);
    const phases: [string, () => Promise<void>, number][] = [
      ['unreachable', () => gate.close(), 3000],
      ['503', async () => { await gate.open(); adx.down = true; adx.downStatus = 503; }, 3000],
      ['429', async () => { adx.downStatus = 429; }, 3000],
    ];
    const accepted = new Set<string>();
    const answers: { status: number; spoolBytes: number }[] = [];
    let notReady = 0;
    let stop = false;
    const outageStart = Date.now();

    const watchReadiness = (async () => {
      while (!stop) {
        if ((await fetch(`${svc.url}/readyz`)).status !== 200) notReady++;
        await sleep(100);
      }
    })();
    // Fluent Bit: one chunk at a time, retried on 503 after Retry-After (scaled down).
    const client = (async () => {
      for (let i = 0; !stop; i++) {
        const uuids = Array.from({ length: 20 }, (_, j) => `outage-${i}-${j}`);
        for (;;) {
          // Random padding: plain bodies are compressed in the spool, and a run of one letter would take no room.
          const res = await svc.post(jsonLinesBody(uuids.map((u) => ({ log: flowLine(u, { Summary: randomBytes(1500).toString('base64').slice(0, 1500) }) }))), ndjson);
          answers.push({ status: res.status, spoolBytes: await svc.metric('hubble_adx_spool_bytes') });
          if (res.status === 200) break;
          expect(res.status).toBe(503);
          if (stop) return;
          await sleep(200);
        }
        for (const u of uuids) accepted.add(u);
        await sleep(20);
      }
    })();

    for (const [, start, ms] of phases) {
      await start();
      await sleep(ms);
    }
    const outageMs = Date.now() - outageStart;
    adx.down = false;
    stop = true;
    await client;
    await watchReadiness;
    const back = Date.now();
    await svc.service.pipeline.flush();
    const drainMs = Date.now() - back;

    const stored = new Set(adx.table('HubbleFlows').map((r) => r.Uuid as string));
    const missing = [...accepted].filter((u) => !stored.has(u));
    const refusals = answers.filter((a) => a.status === 503);
    const deadFiles = existsSync(dead) ? readdirSync(dead) : [];
    console.log(
      `[outage] ${(outageMs / 1000).toFixed(1)} s (refused, 503, 429), ${accepted.size} flows accepted, ${refusals.length} answers 503, ` +
        `dead-lettered ${deadFiles.length}, drained in ${(drainMs / 1000).toFixed(1)} s, delivered ${stored.size}`,
    );
    expect(accepted.size).toBeGreaterThan(500);
    expect(missing).toEqual([]);
    expect(deadFiles).toEqual([]);
    expect(await svc.metric('hubble_adx_sink_dead_lettered_rows_total')).toBe(0);
    expect(notReady).toBe(0);
    // 503 only once the spool reached its bound (and until it is back under batch.resumeBelow of it).
    expect(refusals.length).toBeGreaterThan(0);
    for (const r of refusals) expect(r.spoolBytes).toBeGreaterThanOrEqual(spoolMaxBytes * 0.8);
    expect(await svc.metric('hubble_adx_kusto_retries_total', { reason: 'network' })).toBeGreaterThan(0);
    expect(await svc.metric('hubble_adx_kusto_retries_total', { reason: 'throttled' })).toBeGreaterThan(0);
    await svc.stop();
  }, 60_000);
});
