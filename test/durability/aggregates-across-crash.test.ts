/**
 * Aggregated flows live in memory until a checkpoint takes their aggregate rows; a checkpoint says
 * how far the folded flows are in rows on disk, so that the run after a crash folds the rest again.
 * These runs crash while a backlog is being made into rows again, the case where what was counted
 * (before the crash) runs ahead of what was folded (in this run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { spawnService, type Child } from '../support/child-service.js';
import { FakeAdx } from '../support/fake-adx.js';

const ndjson = { 'content-type': 'application/x-ndjson' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const REQUESTS = 10;
const PER_VERDICT = 10;

/** A request of PER_VERDICT denied and PER_VERDICT allowed flows; the allowed ones all fold into one aggregate row. */
function request(i: number): Buffer {
  const records: Record<string, unknown>[] = [];
  for (let f = 0; f < 2 * PER_VERDICT; f++) {
    const denied = f % 2 === 0;
    const flow = {
      time: new Date().toISOString(),
      uuid: `${denied ? 'denied' : 'allowed'}-${i}-${f}`,
      verdict: denied ? 'DROPPED' : 'FORWARDED',
      ...(denied ? { drop_reason_desc: 'POLICY_DENIED' } : {}),
      IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 40000 + f, destination_port: 443 } },
      source: { namespace: 'shop', pod_name: 'web' },
      destination: { namespace: 'db', pod_name: 'pg-0' },
    };
    records.push({ log: JSON.stringify({ flow, node_name: 'c1/n1', time: flow.time }) });
  }
  return jsonLinesBody(records);
}

describe('aggregated flows across crashes', () => {
  let adx: FakeAdx;
  let dir: string;
  const children: Child[] = [];
  beforeAll(async () => {
    adx = new FakeAdx();
    await adx.start();
    dir = mkdtempSync(join(tmpdir(), 'hubble-adx-agg-crash-'));
  });
  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await adx.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string>) => ({
    NODE_NAME: 'n1',
    HUBBLE_ADX_SINK__TYPE: 'kusto',
    HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: adx.url,
    HUBBLE_ADX_SINK__KUSTO__DATABASE: 'hubble',
    HUBBLE_ADX_SINK__KUSTO__AUTH: 'none',
    HUBBLE_ADX_SINK__KUSTO__RETRY_MAX_ATTEMPTS: '100000',
    HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_DIRECTORY: join(dir, 'dead'),
    HUBBLE_ADX_RETRY__MIN_DELAY_MS: '20',
    HUBBLE_ADX_RETRY__MAX_DELAY_MS: '200',
    HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
    HUBBLE_ADX_SPOOL__LOCK_STALE_MS: '2000',
    HUBBLE_ADX_BATCH__MAX_AGE_MS: '100',
    // No window ends during the test: aggregate rows are taken only when the pipeline asks.
    HUBBLE_ADX_COVERAGE__WINDOW_SECONDS: '3600',
    HUBBLE_ADX_AGGREGATION__ENABLED: 'true',
    HUBBLE_ADX_AGGREGATION__WINDOW_SECONDS: '3600',
    ...extra,
  });

  it('a crash while the backlog is folded again, after a checkpoint took some of it: every allowed flow is in exactly one delivered aggregate row', async () => {
    // Run 1 counts every request and folds its allowed flows; no aggregate row is taken before kill -9.
    const first = await spawnService(env({}));
    children.push(first);
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`http://127.0.0.1:${first.port}/`, { method: 'POST', body: request(i), headers: ndjson });
      expect(res.status).toBe(200);
    }
    // Counted, and that count on disk (a checkpoint follows within checkpointIntervalMs).
    await sleep(1500);
    first.proc.kill('SIGKILL');
    await first.exited;

    // Run 2 makes the backlog again with ADX down and room for a few requests' rows: it takes the
    // aggregates before each request (aggregation.maxKeys 1), then stops for room with the allowed
    // flows of one request folded and not yet taken. kill -9 there.
    adx.down = true;
    const second = await spawnService(env({ HUBBLE_ADX_AGGREGATION__MAX_KEYS: '1', HUBBLE_ADX_BATCH__MAX_PENDING_ROWS: '25' }), first.port);
    children.push(second);
    await sleep(2000);
    second.proc.kill('SIGKILL');
    await second.exited;

    // Run 3: ADX is back; everything is delivered and the run stops cleanly.
    adx.down = false;
    const third = await spawnService(env({}), first.port);
    children.push(third);
    const denied = () => new Set(adx.table('HubbleFlows').filter((r) => r.Verdict === 'DROPPED').map((r) => r.Uuid));
    for (const end = Date.now() + 15_000; denied().size < REQUESTS * PER_VERDICT && Date.now() < end; ) await sleep(100);
    third.proc.kill('SIGTERM');
    expect(await third.exited).toBe(0);

    expect(denied().size).toBe(REQUESTS * PER_VERDICT);
    const aggregates = new Map<string, number>();
    for (const r of adx.table('HubbleFlows')) if (r.AggregatedFlows !== null) aggregates.set(r.Uuid as string, Number(r.AggregatedFlows));
    const folded = [...aggregates.values()].reduce((a, b) => a + b, 0);
    const coverage = new Map<string, Record<string, unknown>>();
    for (const r of adx.table('HubbleCoverage')) coverage.set(`${String(r.RunId)}/${String(r.WindowSequence)}`, r);
    const counted = [...coverage.values()].reduce((s, r) => s + Number(r.FlowsAggregated), 0);
    expect({ counted, folded }).toEqual({ counted: REQUESTS * PER_VERDICT, folded: REQUESTS * PER_VERDICT });
  }, 60_000);
});
