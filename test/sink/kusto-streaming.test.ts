import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fluentBitCaptures } from '../support/fixtures.js';
import { FakeAdx, adxError } from '../support/fake-adx.js';
import { mappingName } from '../../src/schema/index.js';
import { startService, type Running } from '../helpers/service.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';

const flow = (uuid: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ flow: { time: '2026-01-01T00:00:00.123456789Z', uuid, verdict: 'FORWARDED', IP: { source: '10.0.0.1', destination: '10.0.0.2' }, ...extra }, node_name: 'c1/n1' });
const ndjson = { 'content-type': 'application/x-ndjson' };

/** Local-sink rows as ADX holds them: datetimes at 100 ns ticks from the microseconds sent. */
function asAdx(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((r) => {
    const t = r.TimeGenerated as string;
    const m = /^(.{19})(?:\.(\d+))?Z$/.exec(t)!;
    return { ...r, TimeGenerated: `${m[1]}.${(m[2] ?? '').padEnd(6, '0').slice(0, 6)}0Z` };
  });
}

/** Identity rows carry the time each service saw them: compare everything else, in a stable order. */
function stripTime(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map(({ TimeGenerated: _t, ...rest }) => rest).sort((a, b) => String(a.Identity).localeCompare(String(b.Identity)));
}

describe('ADX sink, streaming, with the real SDK against a local ADX protocol server', () => {
  let adx: FakeAdx;
  const running: Running[] = [];
  beforeAll(async () => {
    adx = new FakeAdx();
    await adx.start();
  });
  afterAll(() => adx.stop());
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
    adx.reset();
  });

  async function kustoService(kusto: Record<string, unknown> = {}, batch: Record<string, unknown> = {}) {
    const deadLetterDirectory = mkdtempSync(join(tmpdir(), 'hubble-adx-dl-'));
    const s = await startService({
      sink: { type: 'kusto', kusto: { clusterUrl: adx.url, database: 'hubble', auth: 'none', retryMinDelayMs: 10, retryMaxDelayMs: 50, deadLetterDirectory, ...kusto } },
      batch: { maxAgeMs: 50, ...batch },
    } as never);
    running.push(s);
    return { svc: s, deadLetterDirectory };
  }

  for (const format of ['avro', 'multijson'] as const) {
    it(`${format}: every Fluent Bit capture arrives with every value equal to what the local sink writes`, async () => {
      const local = await startService();
      running.push(local);
      const { svc } = await kustoService({ format });
      for (const c of fluentBitCaptures()) {
        const { host: _h, 'content-length': _l, connection: _c, ...headers } = c.headers;
        expect((await local.post(c.body, headers)).status).toBe(200);
        expect((await svc.post(c.body, headers)).status).toBe(200);
      }
      await svc.service.pipeline.flush();
      const expectedFlows = asAdx(await local.rows('HubbleFlows'));
      expect(expectedFlows).toHaveLength(50);
      expect(adx.table('HubbleFlows')).toEqual(expectedFlows);
      expect(adx.table('HubbleEvents')).toEqual(asAdx(await local.rows('HubbleEvents')));
      const identities = asAdx(await local.rows('HubbleIdentities'));
      expect(identities.length).toBeGreaterThan(0);
      expect(stripTime(adx.table('HubbleIdentities'))).toEqual(stripTime(identities));
      expect(adx.requests.every((r) => r.status === 200 && r.format === format)).toBe(true);
      expect(adx.requests.map((r) => r.mapping)).toContain(mappingName('HubbleFlows', format === 'avro' ? 'avro' : 'json'));
      expect(await svc.metric('hubble_adx_kusto_rows_sent_total', { table: 'flows' })).toBe(50);
      expect(await svc.metric('hubble_adx_event_lag_seconds_count', { table: 'flows' })).toBe(50);
    });
  }

  it('sink.kusto.gzipLevel trades request bytes for CPU; the rows stored are the same', async () => {
    const sent: number[] = [];
    for (const gzipLevel of [1, 9]) {
      adx.reset();
      const { svc } = await kustoService({ gzipLevel });
      for (const c of fluentBitCaptures()) {
        const { host: _h, 'content-length': _l, connection: _c, ...headers } = c.headers;
        expect((await svc.post(c.body, headers)).status).toBe(200);
      }
      await svc.service.pipeline.flush();
      expect(adx.table('HubbleFlows')).toHaveLength(50);
      sent.push(adx.requests.filter((r) => r.table === 'HubbleFlows').reduce((n, r) => n + r.bytes, 0));
    }
    expect(sent[0]).toBeGreaterThan(sent[1]!);
  });

  it('retries 429, 500, 503, a dropped connection and a slow answer, and stores every row once', async () => {
    const { svc } = await kustoService({}, { maxRows: 10 });
    adx.inject(
      { status: 429, body: adxError('TooManyRequests', 'throttled', false) },
      { status: 500 },
      { status: 503, body: adxError('ServiceUnavailable', 'try later', false) },
      { destroy: true },
      { delayMs: 300 },
    );
    const uuids = Array.from({ length: 30 }, (_, i) => `retry-${i}`);
    expect((await svc.post(jsonLinesBody(uuids.map((u) => ({ log: flow(u) }))), ndjson)).status).toBe(200);
    await svc.service.pipeline.flush();
    expect(adx.table('HubbleFlows').map((r) => r.Uuid).sort()).toEqual([...uuids].sort());
    expect(await svc.metric('hubble_adx_kusto_retries_total', { reason: 'throttled' })).toBe(1);
    expect(await svc.metric('hubble_adx_kusto_retries_total', { reason: 'server' })).toBe(2);
    expect(await svc.metric('hubble_adx_kusto_retries_total', { reason: 'network' })).toBe(1);
    expect(await svc.metric('hubble_adx_kusto_throttled_total')).toBe(1);
  });

  it('a request slower than requestTimeoutMs is retried; the late first answer can only add a duplicate', async () => {
    const { svc } = await kustoService({ requestTimeoutMs: 1000 });
    adx.inject({ delayMs: 1500 });
    await svc.post(jsonLinesBody([{ log: flow('slow-1') }]), ndjson);
    await svc.service.pipeline.flush();
    await new Promise((r) => setTimeout(r, 700)); // let the abandoned request finish
    const stored = adx.table('HubbleFlows').map((r) => r.Uuid);
    expect(stored).toEqual(['slow-1', 'slow-1']);
    expect(await svc.metric('hubble_adx_kusto_retries_total', { reason: 'timeout' })).toBe(1);
  });

  it('stopping while a batch is being retried leaves it pending, never dead-lettered', async () => {
    const { svc, deadLetterDirectory } = await kustoService({ retryMinDelayMs: 100, retryMaxDelayMs: 100 });
    adx.down = true;
    await svc.post(jsonLinesBody([{ log: flow('at-stop') }]), ndjson);
    const delivered = await svc.service.stop(300);
    expect(delivered).toBe(false);
    await new Promise((r) => setTimeout(r, 400)); // a retry that was sleeping wakes up after the stop
    expect(readdirSync(deadLetterDirectory)).toEqual([]);
    expect(adx.table('HubbleFlows')).toEqual([]);
  });

  it('dead-letters a batch ADX refuses for good, with the reason, and counts it', async () => {
    const { svc, deadLetterDirectory } = await kustoService();
    adx.inject({ status: 400, body: adxError('BadRequest_MappingReferenceWasNotFound', "Mapping reference 'x' was not found", true) });
    expect((await svc.post(jsonLinesBody([{ log: flow('perm-1') }, { log: flow('perm-2') }]), ndjson)).status).toBe(200);
    await svc.service.pipeline.flush();
    expect(adx.table('HubbleFlows')).toEqual([]);
    const files = readdirSync(deadLetterDirectory).sort();
    expect(files).toHaveLength(2);
    const reason = JSON.parse(readFileSync(join(deadLetterDirectory, files.find((f) => f.endsWith('.reason.json'))!), 'utf8')) as Record<string, unknown>;
    expect(reason).toMatchObject({ table: 'HubbleFlows', rows: 2, reason: 'permanent', status: 400, attempts: 1 });
    expect(String(reason.detail)).toContain('MappingReferenceWasNotFound');
    const rows = readFileSync(join(deadLetterDirectory, files.find((f) => f.endsWith('.jsonl'))!), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { Uuid: string });
    expect(rows.map((r) => r.Uuid)).toEqual(['perm-1', 'perm-2']);
    expect(await svc.metric('hubble_adx_kusto_permanent_errors_total', { table: 'flows', reason: 'permanent' })).toBe(1);
    expect(await svc.metric('hubble_adx_sink_dead_lettered_rows_total', { table: 'flows' })).toBe(2);
  });

  it('gives up on a transient failure after retryMaxAttempts and dead-letters with the reason', async () => {
    const { svc, deadLetterDirectory } = await kustoService({ retryMaxAttempts: 3 });
    adx.inject({ status: 503 }, { status: 503 }, { status: 503 });
    await svc.post(jsonLinesBody([{ log: flow('spent') }]), ndjson);
    await svc.service.pipeline.flush();
    const reason = readdirSync(deadLetterDirectory).find((f) => f.endsWith('.reason.json'))!;
    expect(JSON.parse(readFileSync(join(deadLetterDirectory, reason), 'utf8'))).toMatchObject({ reason: 'retries_spent_server', attempts: 3 });
  });

  it('splits a batch ADX answers 413 for, and splits before sending when it encodes past maxRequestBytes', async () => {
    // One request at a time, so that the 413 meets a request of several rows (a single row ADX
    // calls too large can only be dead-lettered).
    const { svc, deadLetterDirectory } = await kustoService({ maxRequestBytes: 64 * 1024, maxConcurrentRequests: 1 }, { maxRows: 1000 });
    adx.inject({ status: 413, body: adxError('Request_EntityTooLarge', 'too large', true) });
    const big = 'x'.repeat(2000);
    const uuids = Array.from({ length: 100 }, (_, i) => `split-${i}`);
    await svc.post(jsonLinesBody(uuids.map((u) => ({ log: flow(u, { Summary: big }) }))), ndjson);
    await svc.service.pipeline.flush();
    // Parts of a batch travel concurrently (maxConcurrentRequests), so only the set is fixed.
    expect(adx.table('HubbleFlows').map((r) => r.Uuid as string).sort()).toEqual([...uuids].sort());
    const ok = adx.requests.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThan(3);
    expect(adx.requests.filter((r) => r.status === 413)).toHaveLength(1);
    expect(readdirSync(deadLetterDirectory)).toEqual([]);
  });

  it('streaming mode with streaming ingestion disabled on the table: dead letter, permanent error metric', async () => {
    adx.streamingEnabled = false;
    const { svc, deadLetterDirectory } = await kustoService({ mode: 'streaming' });
    await svc.post(jsonLinesBody([{ log: flow('nostream') }]), ndjson);
    await svc.service.pipeline.flush();
    expect(readdirSync(deadLetterDirectory).some((f) => f.endsWith('.reason.json'))).toBe(true);
    expect(await svc.metric('hubble_adx_kusto_permanent_errors_total', { reason: 'streaming_disabled' })).toBe(1);
  });
});
