import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { FakeAdx } from '../support/fake-adx.js';
import { startService, type Running } from '../helpers/service.js';

// Without an identity a flow adds no HubbleIdentities row, so that the fallback tests count flows only.
const flow = (uuid: string, identity?: number) =>
  JSON.stringify({ flow: { time: '2026-01-01T00:00:00.5Z', uuid, verdict: 'DROPPED', source: { identity, labels: ['k8s:app=a'] } }, node_name: 'c1/n1' });
const ndjson = { 'content-type': 'application/x-ndjson' };

describe('ADX sink, queued and managed, through Azurite', () => {
  let adx: FakeAdx;
  let storage: Azurite;
  const running: Running[] = [];
  beforeAll(async () => {
    storage = await startAzurite();
    adx = new FakeAdx();
    adx.storage = { blobContainerSas: storage.blobContainerSas, queueSas: storage.queueSas };
    await adx.start();
  }, 30_000);
  afterAll(async () => {
    await adx.stop();
    await storage.stop();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
    // A stopping service writes its last coverage row: it must not land in the next test's queue.
    await adx.drainQueue(storage.queueSas);
    adx.reset();
  });

  async function service(mode: 'queued' | 'managed', format: 'avro' | 'multijson' = 'avro') {
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-dl-'));
    const s = await startService({
      sink: { type: 'kusto', kusto: { clusterUrl: adx.url, database: 'hubble', auth: 'none', mode, format, retryMaxAttempts: 2, deadLetterDirectory: dir } },
      retry: { minDelayMs: 10, maxDelayMs: 20 },
      batch: { maxAgeMs: 50 },
    } as never);
    running.push(s);
    return { svc: s, dir };
  }

  for (const format of ['avro', 'multijson'] as const) {
    it(`queued (${format}): the blob and queue message land in storage, and ingest to the same rows`, async () => {
      const { svc } = await service('queued', format);
      const uuids = ['q1', 'q2', 'q3'];
      expect((await svc.post(jsonLinesBody(uuids.map((u) => ({ log: flow(u, 1234) }))), ndjson)).status).toBe(200);
      await svc.service.pipeline.flush();
      expect(adx.requests).toEqual([]); // nothing went to the streaming endpoint
      expect(adx.mgmtCommands.some((c) => c.startsWith('.get ingestion resources'))).toBe(true);
      expect(await adx.drainQueue(storage.queueSas)).toBe(4); // 3 flows and their one identity
      const rows = adx.table('HubbleFlows');
      expect(rows.map((r) => r.Uuid)).toEqual(uuids);
      expect(rows[0]).toMatchObject({ Verdict: 'DROPPED', SourceIdentity: 1234, SourceLabels: null, TimeGenerated: '2026-01-01T00:00:00.5000000Z', Cluster: 'c1' });
      // The labels travel once, in the identity catalog.
      expect(adx.table('HubbleIdentities')).toMatchObject([{ Cluster: 'c1', NodeName: 'n1', Identity: 1234, Labels: ['k8s:app=a'] }]);
    });
  }

  it('managed: a table without streaming ingestion falls back to queued, nothing dead-lettered', async () => {
    adx.streamingEnabled = false;
    const { svc, dir } = await service('managed');
    await svc.post(jsonLinesBody([{ log: flow('m1') }, { log: flow('m2') }]), ndjson);
    await svc.service.pipeline.flush();
    expect(adx.requests.map((r) => r.status)).toEqual([400]);
    expect(await adx.drainQueue(storage.queueSas)).toBe(2);
    expect(adx.table('HubbleFlows').map((r) => r.Uuid)).toEqual(['m1', 'm2']);
    expect(readdirSync(dir)).toEqual([]);
    expect(await svc.metric('hubble_adx_kusto_fallbacks_total', { reason: 'streaming_disabled' })).toBe(1);
  });

  it('managed: after the streaming retries are spent, the batch goes queued', async () => {
    const { svc } = await service('managed');
    adx.inject({ status: 503 }, { status: 503 });
    await svc.post(jsonLinesBody([{ log: flow('m3') }]), ndjson);
    await svc.service.pipeline.flush();
    expect(await adx.drainQueue(storage.queueSas)).toBe(1);
    expect(adx.table('HubbleFlows').map((r) => r.Uuid)).toEqual(['m3']);
    expect(await svc.metric('hubble_adx_kusto_fallbacks_total', { reason: 'retries_spent' })).toBe(1);
  });

  it('managed: streaming works when it can (no queue traffic)', async () => {
    const { svc } = await service('managed');
    await svc.post(jsonLinesBody([{ log: flow('m4') }]), ndjson);
    await svc.service.pipeline.flush();
    expect(adx.table('HubbleFlows').map((r) => r.Uuid)).toEqual(['m4']);
    expect(await adx.drainQueue(storage.queueSas)).toBe(0);
  });
});
