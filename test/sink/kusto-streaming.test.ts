import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { projectRoot } from '../support/project-root.js';
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
/** Rows as ADX stores them (datetimes in 100 ns ticks), without the run that received them (each service has its own). */
function asAdx(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((r) => {
    const t = r.TimeGenerated as string;
    const m = /^(.{19})(?:\.(\d+))?Z$/.exec(t)!;
    return { ...r, RunId: null, TimeGenerated: `${m[1]}.${(m[2] ?? '').padEnd(6, '0').slice(0, 6)}0Z` };
  });
}

const withoutRun = (rows: Record<string, unknown>[]) => rows.map((r) => ({ ...r, RunId: null }));

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

  async function kustoService(kusto: Record<string, unknown> = {}, batch: Record<string, unknown> = {}, retry: Record<string, unknown> = {}) {
    const deadLetterDirectory = mkdtempSync(join(tmpdir(), 'hubble-adx-dl-'));
    const s = await startService({
      sink: { type: 'kusto', kusto: { clusterUrl: adx.url, database: 'hubble', auth: 'none', deadLetterDirectory, ...kusto } },
      retry: { minDelayMs: 10, maxDelayMs: 50, ...retry },
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
      expect(adx.table('HubbleFlows').every((r) => typeof r.RunId === 'string')).toBe(true);
      expect(withoutRun(adx.table('HubbleFlows'))).toEqual(expectedFlows);
      expect(withoutRun(adx.table('HubbleEvents'))).toEqual(asAdx(await local.rows('HubbleEvents')));
      const identities = asAdx(await local.rows('HubbleIdentities'));
      expect(identities.length).toBeGreaterThan(0);
      expect(stripTime(withoutRun(adx.table('HubbleIdentities')))).toEqual(stripTime(identities));
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
    const { svc, deadLetterDirectory } = await kustoService({}, {}, { minDelayMs: 100, maxDelayMs: 100 });
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
    // Gzipped on disk.
    const rows = gunzipSync(readFileSync(join(deadLetterDirectory, files.find((f) => f.endsWith('.jsonl.gz'))!))).toString('utf8').trim().split('\n').map((l) => JSON.parse(l) as { Uuid: string });
    expect(rows.map((r) => r.Uuid)).toEqual(['perm-1', 'perm-2']);
    expect(await svc.metric('hubble_adx_kusto_permanent_errors_total', { table: 'flows', reason: 'permanent' })).toBe(1);
    expect(await svc.metric('hubble_adx_sink_dead_lettered_rows_total', { table: 'flows' })).toBe(2);
    // Set aside is not written: neither the metric nor the coverage's RowsWritten counts them.
    expect(await svc.metric('hubble_adx_rows_written_total', { table: 'flows' })).toBe(0);
    expect(await svc.metric('hubble_adx_dead_letter_directory_batches')).toBe(1);
    expect(await svc.metric('hubble_adx_dead_letter_directory_bytes')).toBeGreaterThan(0);
  });

  it('hubble-adx redrive sends dead-letter batches again once the cause is fixed, and removes each only when ADX took it; one refused again stays, with the new answer, even in a full directory', async () => {
    const { svc, deadLetterDirectory } = await kustoService();
    const refuse = { status: 400, body: adxError('BadRequest_MappingReferenceWasNotFound', 'no mapping', true) } as const;
    adx.inject(refuse);
    await svc.post(jsonLinesBody([{ log: flow('redrive-1') }, { log: flow('redrive-2') }]), ndjson);
    await svc.service.pipeline.flush();
    adx.inject(refuse);
    await svc.post(jsonLinesBody([{ log: flow('redrive-3') }]), ndjson);
    await svc.service.pipeline.flush();
    expect(readdirSync(deadLetterDirectory).filter((f) => f.endsWith('.jsonl.gz'))).toHaveLength(2);
    expect(adx.table('HubbleFlows')).toEqual([]);
    // Filler up to the directory's cap: a batch refused again could not be written anew.
    writeFileSync(join(deadLetterDirectory, 'HubbleEvents-20260101T000000-1-0000.jsonl.gz'), Buffer.alloc(1024 * 1024));

    const cli = join(projectRoot(), 'dist', 'src', 'cli.js');
    const env = {
      PATH: process.env.PATH ?? '', HUBBLE_ADX_SINK__TYPE: 'kusto', HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: adx.url, HUBBLE_ADX_SINK__KUSTO__DATABASE: 'hubble',
      HUBBLE_ADX_SINK__KUSTO__AUTH: 'none', HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_DIRECTORY: deadLetterDirectory, HUBBLE_ADX_LOG__LEVEL: 'warn',
      HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_MAX_BYTES: String(1024 * 1024),
    };
    const batches = () => readdirSync(deadLetterDirectory).filter((f) => /^HubbleFlows-.*\.jsonl\.gz$/.test(f)).sort();
    const [refusedAgain] = batches();
    // The first batch is refused again (the mapping is still missing); the second goes through.
    adx.inject(refuse);
    // Not spawnSync: the local ADX server answers from this process's event loop.
    const run = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string }>((res) => {
        execFile(process.execPath, [cli, ...args], { env, encoding: 'utf8', timeout: 20_000 }, (err, stdout) => res({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout }));
      });
    const first = await run(['redrive']);
    expect(first.status).toBe(1);
    expect(JSON.parse(first.stdout)).toMatchObject({ batches: 2, sent: 1, rows: 1, refusedAgain: 1, left: 0 });
    expect(batches()).toEqual([refusedAgain]);
    const reason = JSON.parse(readFileSync(join(deadLetterDirectory, refusedAgain!.replace(/\.jsonl\.gz$/, '.reason.json')), 'utf8')) as Record<string, unknown>;
    expect(reason).toMatchObject({ table: 'HubbleFlows', rows: 2, reason: 'permanent', redrives: 1 });
    expect(String(reason.detail)).toContain('no mapping');
    rmSync(join(deadLetterDirectory, 'HubbleEvents-20260101T000000-1-0000.jsonl.gz'));
    // Mapping fixed: the rest goes, and the directory is empty.
    const second = await run(['redrive', deadLetterDirectory]);
    expect(second.status).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ batches: 1, sent: 1, rows: 2, refusedAgain: 0 });
    expect(readdirSync(deadLetterDirectory)).toEqual([]);
    expect(adx.table('HubbleFlows').map((r) => r.Uuid).sort()).toEqual(['redrive-1', 'redrive-2', 'redrive-3']);
  });

  it('never dead-letters a transient failure: 503s past retryMaxAttempts are retried until ADX takes the batch', async () => {
    const { svc, deadLetterDirectory } = await kustoService({ retryMaxAttempts: 2 });
    adx.inject({ status: 503 }, { status: 503 }, { status: 500 }, { status: 429 }, { status: 503 });
    await svc.post(jsonLinesBody([{ log: flow('outlasts') }]), ndjson);
    await svc.service.pipeline.flush();
    expect(adx.table('HubbleFlows').map((r) => r.Uuid)).toEqual(['outlasts']);
    expect(readdirSync(deadLetterDirectory)).toEqual([]);
    expect(await svc.metric('hubble_adx_kusto_retries_total')).toBe(5);
  });

  it('a full dead-letter directory refuses the batch instead of growing: it stays pending, and is dead-lettered once there is room', async () => {
    const { svc, deadLetterDirectory } = await kustoService({ deadLetterMaxBytes: 1024 * 1024 });
    writeFileSync(join(deadLetterDirectory, 'HubbleFlows-20260101T000000-1-0000.jsonl.gz'), Buffer.alloc(1024 * 1024));
    writeFileSync(join(deadLetterDirectory, 'HubbleFlows-20260101T000000-1-0000.reason.json'), '{"table":"HubbleFlows"}');
    adx.inject(...Array.from({ length: 50 }, () => ({ status: 400, body: adxError('BadRequest_MappingReferenceWasNotFound', 'no mapping', true) })));
    await svc.post(jsonLinesBody([{ log: flow('refused-while-full') }]), ndjson);
    // Refused by ADX, and refused again by the directory each time the batch is set aside.
    const refused = async () => (await svc.metric('hubble_adx_sink_errors_total')) >= 2 && (await svc.metric('hubble_adx_pipeline_pending_rows')) === 1;
    for (let i = 0; i < 100 && !(await refused()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await svc.metric('hubble_adx_pipeline_pending_rows')).toBe(1);
    expect(readdirSync(deadLetterDirectory)).toHaveLength(2);
    // The operator redrives or removes the old batch: the refused one goes into the directory.
    rmSync(join(deadLetterDirectory, 'HubbleFlows-20260101T000000-1-0000.jsonl.gz'));
    await svc.service.pipeline.flush();
    expect(readdirSync(deadLetterDirectory).filter((f) => f.endsWith('.jsonl.gz'))).toHaveLength(1);
    expect(await svc.metric('hubble_adx_pipeline_pending_rows')).toBe(0);
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
