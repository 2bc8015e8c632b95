/**
 * A run stops (or crashes) with rows of counted records not yet delivered, and the next starts with
 * other filters, sampling or aggregation: the records it makes into rows again were counted by the
 * run before, and are decided as that run decided them, so that the rows match the counts.
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

function request(i: number, publicDestinations: boolean): Buffer {
  const records: Record<string, unknown>[] = [];
  for (let f = 0; f < 2 * PER_VERDICT; f++) {
    const denied = f % 2 === 0;
    const flow = {
      time: new Date().toISOString(),
      uuid: `${denied ? 'denied' : 'allowed'}-${i}-${f}`,
      verdict: denied ? 'DROPPED' : 'FORWARDED',
      ...(denied ? { drop_reason_desc: 'POLICY_DENIED' } : {}),
      IP: { source: `10.0.${i}.${f}`, destination: publicDestinations ? `8.8.${i}.${f}` : '10.0.0.2', ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 40000 + f, destination_port: 443 } },
      source: { namespace: 'shop', pod_name: 'web' },
      destination: { namespace: 'db', pod_name: 'pg-0' },
    };
    records.push({ log: JSON.stringify({ flow, node_name: 'c1/n1', time: flow.time }) });
  }
  return jsonLinesBody(records);
}

const ON = { HUBBLE_ADX_AGGREGATION__ENABLED: 'true', HUBBLE_ADX_AGGREGATION__WINDOW_SECONDS: '3600' };
const OFF = { HUBBLE_ADX_AGGREGATION__ENABLED: 'false' };
const SAMPLE_4 = { HUBBLE_ADX_SAMPLING__ALLOWED_ONE_IN: '4' };
const PSEUDONYMIZE = { HUBBLE_ADX_ENRICH__PSEUDONYMIZE__ENABLED: 'true', HUBBLE_ADX_ENRICH__PSEUDONYMIZE__KEY: 'k'.repeat(40) };

describe('a configuration change across a stop or a crash, with rows still to deliver', () => {
  let adx: FakeAdx;
  let root: string;
  const children: Child[] = [];
  beforeAll(async () => {
    adx = new FakeAdx();
    await adx.start();
    root = mkdtempSync(join(tmpdir(), 'hubble-adx-config-change-'));
  });
  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await adx.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const env = (dir: string, extra: Record<string, string>) => ({
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
    HUBBLE_ADX_SHUTDOWN__GRACE_MS: '300',
    HUBBLE_ADX_COVERAGE__WINDOW_SECONDS: '3600',
    ...extra,
  });

  it.each([
    { change: 'aggregation turned on', before: OFF, after: ON, end: 'SIGTERM' },
    { change: 'aggregation turned off', before: ON, after: OFF, end: 'SIGTERM' },
    { change: 'sampling raised to 1 in 10', before: OFF, after: { ...OFF, HUBBLE_ADX_SAMPLING__ALLOWED_ONE_IN: '10' }, end: 'SIGTERM' },
    { change: 'aggregation turned on', before: OFF, after: ON, end: 'SIGKILL' },
    { change: 'aggregation turned off', before: ON, after: OFF, end: 'SIGKILL' },
    { change: 'pseudonymization turned on, sampling 1 in 4', before: { ...OFF, ...SAMPLE_4 }, after: { ...OFF, ...SAMPLE_4, ...PSEUDONYMIZE }, end: 'SIGKILL' },
  ] as const)('$change, after a $end while ADX was down: every flow counted kept is in exactly one row, every one counted aggregated in an aggregate row', async ({ change, before, after, end }) => {
    const publicDestinations = change.startsWith('pseudonymization');
    adx.reset();
    const dir = mkdtempSync(join(root, 'case-'));
    adx.down = true;
    const first = await spawnService(env(dir, before));
    children.push(first);
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`http://127.0.0.1:${first.port}/`, { method: 'POST', body: request(i, publicDestinations), headers: ndjson });
      expect(res.status).toBe(200);
    }
    await sleep(1000);
    first.proc.kill(end);
    await first.exited;

    adx.down = false;
    const second = await spawnService(env(dir, after), first.port);
    children.push(second);
    const denied = () => new Set(adx.table('HubbleFlows').filter((r) => r.Verdict === 'DROPPED').map((r) => r.Uuid));
    for (const until = Date.now() + 15_000; denied().size < REQUESTS * PER_VERDICT && Date.now() < until; ) await sleep(100);
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    const flows = new Map<string, Record<string, unknown>>();
    for (const r of adx.table('HubbleFlows')) flows.set(r.Uuid as string, r);
    const coverage = new Map<string, Record<string, unknown>>();
    for (const r of adx.table('HubbleCoverage')) coverage.set(`${String(r.RunId)}/${String(r.WindowSequence)}`, r);
    const sum = (k: string) => [...coverage.values()].reduce((s, r) => s + Number(r[k]), 0);
    const inRows = [...flows.values()].reduce((s, r) => s + (r.AggregatedFlows === null ? 1 : Number(r.AggregatedFlows)), 0);
    expect(denied().size).toBe(REQUESTS * PER_VERDICT);
    expect(sum('FlowsSeen')).toBe(2 * REQUESTS * PER_VERDICT);
    const inAggregates = [...flows.values()].reduce((s, r) => s + (r.AggregatedFlows === null ? 0 : Number(r.AggregatedFlows)), 0);
    expect({ kept: sum('FlowsKept'), aggregated: sum('FlowsAggregated') }).toEqual({ kept: inRows, aggregated: inAggregates });
  }, 60_000);
});
