/**
 * A backlog made into rows again after a crash or a stop: its records were counted (and their
 * allowed flows folded) by an earlier run, so the rows made again must match those counts exactly,
 * whatever happens meanwhile: another crash part-way, or another configuration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { spawnService, type Child } from '../support/child-service.js';
import { FakeAdx } from '../support/fake-adx.js';

const ndjson = { 'content-type': 'application/x-ndjson' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const REQUESTS = 10;
const PER_VERDICT = 10;

/**
 * Request `i`: PER_VERDICT denied and PER_VERDICT allowed flows, from one source (its allowed flows
 * fold into one aggregate row) or from one source each, to a private address or public ones.
 */
function request(i: number, o: { sources: 'one' | 'many'; destinations: 'private' | 'public'; batch?: string }): Buffer {
  const records: Record<string, unknown>[] = [];
  for (let f = 0; f < 2 * PER_VERDICT; f++) {
    const denied = f % 2 === 0;
    const flow = {
      time: new Date().toISOString(),
      uuid: `${o.batch ?? 'a'}-${denied ? 'denied' : 'allowed'}-${i}-${f}`,
      verdict: denied ? 'DROPPED' : 'FORWARDED',
      ...(denied ? { drop_reason_desc: 'POLICY_DENIED' } : {}),
      IP: { source: o.sources === 'one' ? '10.0.0.1' : `10.0.${i}.${f}`, destination: o.destinations === 'public' ? `8.8.${i}.${f}` : '10.0.0.2', ipVersion: 'IPv4' },
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

describe('a backlog made into rows again', () => {
  let adx: FakeAdx;
  let root: string;
  let dir: string;
  const children: Child[] = [];
  beforeAll(async () => {
    adx = new FakeAdx();
    await adx.start();
    root = mkdtempSync(join(tmpdir(), 'hubble-adx-backlog-'));
  });
  beforeEach(() => {
    adx.reset();
    dir = mkdtempSync(join(root, 'case-'));
  });
  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await adx.stop();
    rmSync(root, { recursive: true, force: true });
  });

  /** A run on the case's spool, the Kusto sink to the local ADX; no coverage window ends during a case. */
  async function run(extra: Record<string, string>, port?: number): Promise<Child> {
    const env = {
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
    };
    const child = await spawnService(env, port);
    children.push(child);
    return child;
  }

  async function post(child: Child, o: Parameters<typeof request>[1]): Promise<void> {
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: request(i, o), headers: ndjson });
      expect(res.status).toBe(200);
    }
  }

  async function end(child: Child, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    child.proc.kill(signal);
    await child.exited;
  }

  /** The last run delivers everything and stops cleanly; what ADX then holds, against what HubbleCoverage counted. */
  async function deliverAndAccount(last: Child, batches = 1) {
    const denied = () => new Set(adx.table('HubbleFlows').filter((r) => r.Verdict === 'DROPPED').map((r) => r.Uuid));
    for (const until = Date.now() + 15_000; denied().size < batches * REQUESTS * PER_VERDICT && Date.now() < until; ) await sleep(100);
    last.proc.kill('SIGTERM');
    expect(await last.exited).toBe(0);
    const flows = new Map<string, Record<string, unknown>>();
    for (const r of adx.table('HubbleFlows')) flows.set(r.Uuid as string, r);
    const coverage = new Map<string, Record<string, unknown>>();
    for (const r of adx.table('HubbleCoverage')) coverage.set(`${String(r.RunId)}/${String(r.WindowSequence)}`, r);
    const counted = (k: string) => [...coverage.values()].reduce((s, r) => s + Number(r[k]), 0);
    const rows = [...flows.values()];
    return {
      denied: denied().size,
      seen: counted('FlowsSeen'),
      kept: counted('FlowsKept'),
      aggregated: counted('FlowsAggregated'),
      /** Flows in rows: one per row of its own, AggregatedFlows per aggregate row. */
      inRows: rows.reduce((s, r) => s + (r.AggregatedFlows === null ? 1 : Number(r.AggregatedFlows)), 0),
      inAggregates: rows.reduce((s, r) => s + (r.AggregatedFlows === null ? 0 : Number(r.AggregatedFlows)), 0),
    };
  }

  it('a crash while the backlog is folded again, after a checkpoint took some of it: every allowed flow is in exactly one delivered aggregate row', async () => {
    // Run 1 counts every request and folds its allowed flows; no aggregate row is taken before kill -9.
    const first = await run(ON);
    await post(first, { sources: 'one', destinations: 'private' });
    // Counted, and that count on disk (a checkpoint follows within checkpointIntervalMs).
    await sleep(1500);
    await end(first, 'SIGKILL');

    // Run 2 makes the backlog again with ADX down and room for a few requests' rows: it takes the
    // aggregates before each request (aggregation.maxKeys 1), then stops for room with the allowed
    // flows of one request folded and not yet taken. kill -9 there.
    adx.down = true;
    const second = await run({ ...ON, HUBBLE_ADX_AGGREGATION__MAX_KEYS: '1', HUBBLE_ADX_BATCH__MAX_PENDING_ROWS: '25' }, first.port);
    await sleep(2000);
    await end(second, 'SIGKILL');

    // Run 3: ADX is back.
    adx.down = false;
    const got = await deliverAndAccount(await run(ON, first.port));
    expect(got.denied).toBe(REQUESTS * PER_VERDICT);
    expect({ aggregated: got.aggregated, inAggregates: got.inAggregates }).toEqual({ aggregated: REQUESTS * PER_VERDICT, inAggregates: REQUESTS * PER_VERDICT });
  }, 60_000);

  it.each([
    { change: 'aggregation turned on', before: OFF, after: ON, signal: 'SIGTERM' },
    { change: 'aggregation turned off', before: ON, after: OFF, signal: 'SIGTERM' },
    { change: 'sampling raised to 1 in 10', before: OFF, after: { ...OFF, HUBBLE_ADX_SAMPLING__ALLOWED_ONE_IN: '10' }, signal: 'SIGTERM' },
    { change: 'aggregation turned on', before: OFF, after: ON, signal: 'SIGKILL' },
    { change: 'aggregation turned off', before: ON, after: OFF, signal: 'SIGKILL' },
    { change: 'pseudonymization turned on, sampling 1 in 4', before: { ...OFF, ...SAMPLE_4 }, after: { ...OFF, ...SAMPLE_4, ...PSEUDONYMIZE }, signal: 'SIGKILL' },
  ] as const)('$change, after a $signal while ADX was down: every flow counted kept is in exactly one row, every one counted aggregated in an aggregate row', async ({ change, before, after, signal }) => {
    adx.down = true;
    const first = await run(before);
    await post(first, { sources: 'many', destinations: change.startsWith('pseudonymization') ? 'public' : 'private' });
    await sleep(1000);
    await end(first, signal);

    adx.down = false;
    const got = await deliverAndAccount(await run(after, first.port));
    expect(got.denied).toBe(REQUESTS * PER_VERDICT);
    expect(got.seen).toBe(2 * REQUESTS * PER_VERDICT);
    expect({ kept: got.kept, aggregated: got.aggregated }).toEqual({ kept: got.inRows, aggregated: got.inAggregates });
  }, 60_000);

  it('two runs configured differently left a backlog, the later one\'s start already gone from the spool: each run\'s records are decided as that run decided them', async () => {
    adx.down = true;
    const first = await run(OFF);
    await post(first, { sources: 'many', destinations: 'private', batch: 'x' });
    await end(first, 'SIGTERM');
    // The second run counts and folds its own requests; its start record settles with its first
    // checkpoint, and the next start finds only its requests, after the first run's.
    const second = await run({ ...ON, ...SAMPLE_4 }, first.port);
    await sleep(1000);
    await post(second, { sources: 'many', destinations: 'private', batch: 'y' });
    await sleep(1000);
    await end(second, 'SIGTERM');

    adx.down = false;
    const got = await deliverAndAccount(await run(OFF, first.port), 2);
    expect(got.denied).toBe(2 * REQUESTS * PER_VERDICT);
    expect(got.seen).toBe(4 * REQUESTS * PER_VERDICT);
    expect(got.aggregated).toBeGreaterThan(0);
    expect({ kept: got.kept, aggregated: got.aggregated }).toEqual({ kept: got.inRows, aggregated: got.inAggregates });
  }, 60_000);
});
