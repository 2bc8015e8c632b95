import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeAdx } from '../support/fake-adx.js';
import { createMetrics } from '../../src/metrics/index.js';
import { KustoSink, type KustoSinkOptions } from '../../src/sink/kusto/kusto-sink.js';
import { batchOf } from '../../src/batch/index.js';
import { SCHEMA_VERSION, TABLES, mappingName } from '../../src/schema/index.js';

// Records whether azure-kusto-ingest was loaded, and lets it load as it is.
const loaded = vi.hoisted(() => ({ ingest: false }));
vi.mock('azure-kusto-ingest', async (importOriginal) => {
  loaded.ingest = true;
  return importOriginal();
});

const options = (adx: FakeAdx, mode: KustoSinkOptions['mode']): KustoSinkOptions => ({
  clusterUrl: adx.url,
  database: 'hubble',
  mode,
  format: 'multijson',
  maxRequestBytes: 3_500_000,
  maxConcurrentRequests: 2,
  deadLetterDirectory: mkdtempSync(join(tmpdir(), 'hubble-adx-dl-')),
  deadLetterMaxBytes: 1024 * 1024,
  tableNames: Object.fromEntries(Object.entries(TABLES).map(([k, t]) => [k, t.defaultName])) as KustoSinkOptions['tableNames'],
  credential: null,
});

function oneDeadLetterRow(sink: KustoSink) {
  const w = sink.writer('deadLetters');
  w.add({
    TimeGenerated: '2026-01-01T00:00:00Z',
    Stage: 'receive',
    Reason: 'test',
    Message: 'm',
    NodeName: null,
    RawData: 'r',
    ReceiverNode: 'n1',
    RunId: null,
    SchemaVersion: SCHEMA_VERSION,
  });
  return batchOf('deadLetters', [w.finish()!]);
}

describe('ADX sink: which Azure SDK packages a process loads', () => {
  let adx: FakeAdx;
  beforeAll(async () => {
    adx = new FakeAdx();
    await adx.start();
  });
  afterAll(() => adx.stop());

  it('streaming ingestion goes through azure-kusto-data alone; azure-kusto-ingest is loaded when a batch goes queued', async () => {
    const streaming = new KustoSink(options(adx, 'streaming'), createMetrics({ defaultMetrics: false }));
    await streaming.send(oneDeadLetterRow(streaming), 'streaming');
    await streaming.close();
    expect(adx.table('HubbleDeadLetters')).toHaveLength(1);
    expect(adx.requests).toMatchObject([
      { table: 'HubbleDeadLetters', format: 'multijson', mapping: mappingName('HubbleDeadLetters', 'json'), status: 200 },
    ]);
    expect(loaded.ingest).toBe(false);

    // Queued: the SDK asks this server for its storage, which it has none of here; what matters is that it was loaded.
    const queued = new KustoSink(options(adx, 'queued'), createMetrics({ defaultMetrics: false }));
    await expect(queued.send(oneDeadLetterRow(queued), 'queued')).rejects.toThrow();
    await queued.close();
    expect(loaded.ingest).toBe(true);
  });
});
