import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { TokenCredential } from '@azure/identity';
import { Client as KustoClient } from 'azure-kusto-data';
import type { IngestClient } from 'azure-kusto-ingest';
import type { Metrics } from '../../metrics/index.js';
import { mappingName, type RowOfTable, type TableKey } from '../../schema/index.js';
import type { Sink, Verdict } from '../types.js';
import { classifyIngestError } from './classify-error.js';
import { connectionFor } from './connection.js';
import { DeadLetterFiles } from './dead-letter-files.js';
import { AvroWriter, avroContainer } from './encode-avro.js';
import { multijsonLine } from './encode-multijson.js';
import { concatData, splitBatch, type Batch, type ChunkWriter } from '../../batch/index.js';
import { LinesWriter } from '../lines-writer.js';

const gzip = promisify(gzipCb);

export interface KustoSinkOptions {
  clusterUrl: string;
  ingestUrl?: string | undefined;
  database: string;
  mode: 'streaming' | 'queued' | 'managed';
  format: 'avro' | 'multijson';
  maxRequestBytes: number;
  maxConcurrentRequests: number;
  gzipLevel?: number;
  deadLetterDirectory: string;
  deadLetterMaxBytes: number;
  tableNames: Record<TableKey, string>;
  credential: TokenCredential | null;
}

/** The data management URL for queued ingestion: `https://ingest-<cluster>` unless configured. */
function ingestUrlOf(o: KustoSinkOptions): string {
  if (o.ingestUrl) return o.ingestUrl;
  const u = new URL(o.clusterUrl);
  const isAddress = u.hostname === 'localhost' || /^[\d.]+$/.test(u.hostname) || u.hostname.includes(':');
  if (!isAddress && !u.hostname.startsWith('ingest-')) u.hostname = `ingest-${u.hostname}`;
  return u.toString().replace(/\/$/, '');
}

/**
 * The engine URL streaming requests go to: a configured data management URL (`ingest-…`) is
 * corrected to its engine, as the SDK's streaming client does.
 */
function engineUrlOf(clusterUrl: string): string {
  const u = new URL(clusterUrl);
  if (!u.hostname.startsWith('ingest-')) return clusterUrl;
  u.hostname = u.hostname.slice('ingest-'.length);
  return u.toString().replace(/\/$/, '');
}

/**
 * azure-kusto-ingest (queued ingestion through blobs and queues, and the storage SDKs it brings) is
 * loaded only when a batch goes that way: streaming alone needs azure-kusto-data, and the idle
 * process is smaller without it (docs/benchmarks.md).
 */
let ingestModule: Promise<typeof import('azure-kusto-ingest')> | null = null;
const loadIngest = () => (ingestModule ??= import('azure-kusto-ingest'));

/** A single row over the streaming request limit: no split helps, only another route or setting it aside. */
class RowTooLarge extends Error {
  constructor(readonly bytes: number) {
    super(`one row encodes to ${bytes} bytes, over sink.kusto.maxRequestBytes`);
    this.name = 'RowTooLarge';
  }
}

/**
 * Azure Data Explorer through the official SDK, one attempt at a time. Each batch is encoded (Avro
 * or JSON lines), cut to stay under the streaming request limit, gzipped and sent; what the SDK
 * and ADX answer is classified here (classify-error.ts), and the retry chain acts on it: retry,
 * split, queued ingestion (managed mode), or the dead-letter directory.
 */
export class KustoSink implements Sink {
  readonly name = 'kusto';
  readonly routes: readonly string[];
  private readonly streaming: KustoClient | null;
  private queuedClient: IngestClient | null = null;
  private readonly deadLetters: DeadLetterFiles;
  private readonly measureTimer: NodeJS.Timeout;

  constructor(
    private readonly o: KustoSinkOptions,
    private readonly metrics: Metrics,
  ) {
    this.routes = o.mode === 'managed' ? ['streaming', 'queued'] : [o.mode];
    this.streaming = o.mode === 'queued' ? null : new KustoClient(connectionFor(engineUrlOf(o.clusterUrl), o.credential));
    this.deadLetters = new DeadLetterFiles(o.deadLetterDirectory, o.deadLetterMaxBytes, (bytes, batches) => {
      metrics.deadLetterBytes.set(bytes);
      metrics.deadLetterBatches.set(batches);
    });
    // A redrive (another process) frees room: the gauges follow without waiting for a write.
    this.measureTimer = setInterval(() => this.deadLetters.measure(), 60_000);
    this.measureTimer.unref();
  }

  /** Batches are cut under the streaming request limit as they are made. */
  get maxBatchBytes(): number {
    return Math.floor(this.o.maxRequestBytes * 0.9);
  }

  writer<K extends TableKey>(table: K): ChunkWriter<RowOfTable[K]> {
    return this.o.format === 'avro' ? new AvroWriter(table) : new LinesWriter(multijsonLine(table));
  }

  classify(err: unknown): Verdict {
    if (err instanceof RowTooLarge) return { action: 'split', reason: 'too_large', status: null, detail: err.message };
    return classifyIngestError(err);
  }

  async send(batch: Batch, route: string): Promise<void> {
    if (route === 'streaming' && batch.bytes > this.maxBatchBytes) {
      if (batch.rows === 1) throw new RowTooLarge(batch.bytes);
      // Balanced parts (8 + 7 rather than 14 + 1), each under the limit, sent side by side.
      await this.inParallel(splitBatch(batch, Math.ceil(batch.bytes / this.maxBatchBytes)), (p) => this.sendOne(p, route));
      return;
    }
    await this.sendOne(batch, route);
  }

  /**
   * Requests of one batch go out `maxConcurrentRequests` at a time: one at a time, the wait for
   * each acknowledgement, not CPU, bounds throughput. The attempt fails if any of them does.
   */
  private async inParallel<T>(items: T[], run: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    let failure: unknown = null;
    const lane = async () => {
      while (next < items.length && failure === null) {
        const item = items[next++]!;
        try {
          await run(item);
        } catch (err) {
          failure = err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.maxConcurrentRequests, items.length) }, lane));
    if (failure !== null) throw failure;
  }

  private payloadOf(batch: Batch): Buffer {
    return this.o.format === 'avro' ? avroContainer(batch) : concatData(batch);
  }

  /** One request. */
  private async sendOne(batch: Batch, route: string): Promise<void> {
    const { table, rows } = batch;
    const tableName = this.o.tableNames[table];
    const format = this.o.format === 'avro' ? 'avro' : 'multijson';
    const mapping = mappingName(tableName, this.o.format === 'avro' ? 'avro' : 'json');
    const body = await gzip(this.payloadOf(batch), { level: this.o.gzipLevel ?? 3 });
    const stop = this.metrics.kustoRequestDuration.startTimer({ table, route });
    try {
      // The streaming ingestion REST call as the SDK's streaming client makes it (the client gzips
      // nothing given a compressed stream): POST …/v1/rest/ingest/{db}/{table}?streamFormat=…&mappingName=…,
      // Content-Encoding gzip; the body is sent as one buffer of known length.
      if (route === 'streaming') await this.streaming!.executeStreamingIngest(this.o.database, tableName, body, format, mapping);
      else await this.sendQueued(tableName, format, mapping, body);
    } catch (err) {
      stop({ result: 'error' });
      this.metrics.kustoBatches.inc({ table, route, result: this.classify(err).action });
      throw err;
    }
    stop({ result: 'success' });
    this.metrics.kustoBatches.inc({ table, route, result: 'success' });
    this.metrics.kustoRowsSent.inc({ table }, rows);
    this.metrics.kustoBytesSent.inc({ table, format: this.o.format }, body.length);
    this.metrics.sinkLastSuccess.set({ table }, Date.now() / 1000);
  }

  /** Queued ingestion: the gzipped payload as a blob, announced on the ingestion queue (azure-kusto-ingest). */
  private async sendQueued(table: string, format: 'avro' | 'multijson', mapping: string, body: Buffer): Promise<void> {
    const sdk = await loadIngest();
    const client = (this.queuedClient ??= new sdk.IngestClient(connectionFor(ingestUrlOf(this.o), this.o.credential)));
    const props = new sdk.IngestionProperties({
      database: this.o.database,
      table,
      format: format === 'avro' ? sdk.DataFormat.AVRO : sdk.DataFormat.MULTIJSON,
      ingestionMappingReference: mapping,
    });
    // The SDK wants a Readable; the payload is gzipped here so its size on the wire is known.
    await client.ingestFromStream(new sdk.StreamDescriptor(Readable.from([body]), null, sdk.CompressionType.GZIP, body.length), props);
  }

  /**
   * Keep rows ADX refused for good on disk, as they were sent. When the directory is at its cap
   * this rejects: the batch is not taken, stays pending in the spool, and backpressure follows.
   */
  async setAside(batch: Batch, verdict: Verdict, route: string, attempts: number): Promise<void> {
    const reason = { reason: verdict.reason, detail: verdict.detail, status: verdict.status, attempts, route };
    await this.deadLetters.write(this.o.tableNames[batch.table], this.o.format, this.payloadOf(batch), batch.rows, reason);
  }

  async close(): Promise<void> {
    clearInterval(this.measureTimer);
    this.streaming?.close();
    this.queuedClient?.close();
  }
}
