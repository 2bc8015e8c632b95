import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { TokenCredential } from '@azure/identity';
import {
  CompressionType, DataFormat, IngestClient, IngestionProperties, StreamDescriptor, StreamingIngestClient,
} from 'azure-kusto-ingest';
import type { Metrics } from '../../metrics/index.js';
import { mappingName, type RowOfTable, type TableKey } from '../../schema/index.js';
import type { Sink } from '../types.js';
import { classifyIngestError, type Verdict } from './classify-error.js';
import { connectionFor } from './connection.js';
import { DeadLetterFiles } from './dead-letter-files.js';
import { AvroWriter, avroContainer } from './encode-avro.js';
import { multijsonLine } from './encode-multijson.js';
import { concatData, splitBatch, type Batch, type ChunkWriter } from '../../batch/index.js';
import { LinesWriter } from '../lines-writer.js';
import type { Logger } from '../../logger.js';
import type { RetryPolicy } from '../../retry-policy.js';

const gzip = promisify(gzipCb);

export interface KustoSinkOptions {
  clusterUrl: string;
  ingestUrl?: string | undefined;
  database: string;
  mode: 'streaming' | 'queued' | 'managed';
  format: 'avro' | 'multijson';
  maxRequestBytes: number;
  requestTimeoutMs: number;
  retryMaxAttempts: number;
  retry: RetryPolicy;
  retryMaxAgeMs: number;
  maxConcurrentRequests: number;
  gzipLevel?: number;
  deadLetterDirectory: string;
  deadLetterMaxBytes: number;
  tableNames: Record<TableKey, string>;
  credential: TokenCredential | null;
}

type Route = 'streaming' | 'queued';

/** The data management URL for queued ingestion: `https://ingest-<cluster>` unless configured. */
function ingestUrlOf(o: KustoSinkOptions): string {
  if (o.ingestUrl) return o.ingestUrl;
  const u = new URL(o.clusterUrl);
  const isAddress = u.hostname === 'localhost' || /^[\d.]+$/.test(u.hostname) || u.hostname.includes(':');
  if (!isAddress && !u.hostname.startsWith('ingest-')) u.hostname = `ingest-${u.hostname}`;
  return u.toString().replace(/\/$/, '');
}

/**
 * Azure Data Explorer through the official SDK. Each batch is encoded (Avro or JSON lines), split
 * to stay under the streaming request limit, gzipped and sent; the SDK's errors are classified
 * here (not by ManagedStreamingIngestClient, which retries even permanent errors) into retry with
 * backoff, split, fall back to queued ingestion, or dead-letter. `write` resolves once every row of
 * the batch is acknowledged by ADX or written to the dead-letter directory.
 */
export class KustoSink implements Sink {
  readonly name = 'kusto';
  private readonly streaming: StreamingIngestClient | null;
  private queuedClient: IngestClient | null = null;
  private readonly deadLetters: DeadLetterFiles;
  private closed = false;
  private readonly measureTimer: NodeJS.Timeout;

  constructor(
    private readonly o: KustoSinkOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.streaming = o.mode === 'queued' ? null : new StreamingIngestClient(connectionFor(o.clusterUrl, o.credential));
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

  async write(batch: Batch): Promise<void> {
    await this.send(batch);
  }

  /**
   * Deliver a batch as `write` does, saying how it ended: acknowledged by ADX, or (some of its rows)
   * refused for good and written to the dead-letter directory. For `redrive`.
   */
  async send(batch: Batch): Promise<{ deadLettered: number }> {
    if (batch.rows === 0) return { deadLettered: 0 };
    return { deadLettered: await this.deliver(batch) };
  }

  private payloadOf(batch: Batch): Buffer {
    return this.o.format === 'avro' ? avroContainer(batch) : concatData(batch);
  }

  /** Resolves with how many of the rows were dead-lettered (0: ADX acknowledged them all). */
  private async deliver(batch: Batch): Promise<number> {
    const route: Route = this.o.mode === 'queued' ? 'queued' : 'streaming';
    if (route === 'streaming' && batch.bytes > this.maxBatchBytes) {
      if (batch.rows > 1) {
        // Balanced parts (8 + 7 rather than 14 + 1), each under the limit, sent side by side.
        const parts = splitBatch(batch, Math.ceil(batch.bytes / this.maxBatchBytes));
        return this.inParallel(parts, (p) => this.deliver(p));
      }
      if (this.o.mode === 'managed') return this.attempt(batch, this.payloadOf(batch), 'queued', 'too_large');
      return this.deadLetter(batch, { reason: 'too_large', detail: `one row encodes to ${batch.bytes} bytes, over sink.kusto.maxRequestBytes` });
    }
    return this.attempt(batch, this.payloadOf(batch), route, null);
  }

  /**
   * Requests of one batch go out `maxConcurrentRequests` at a time: one at a time, the wait for
   * each acknowledgement, not CPU, bounds throughput. The batch is done when all of them are.
   */
  private async inParallel<T>(items: T[], run: (item: T) => Promise<number>): Promise<number> {
    let next = 0;
    let failure: unknown = null;
    let sum = 0;
    const lane = async () => {
      while (next < items.length && failure === null) {
        const item = items[next++]!;
        try {
          // Not `sum += await`: that reads the sum before the wait, losing the other lanes' parts.
          const n = await run(item);
          sum += n;
        } catch (err) {
          failure = err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.maxConcurrentRequests, items.length) }, lane));
    if (failure !== null) throw failure;
    return sum;
  }

  /** ADX said 413: halves, each sent as a batch of its own. */
  private async split(batch: Batch): Promise<number> {
    let dead = 0;
    for (const part of splitBatch(batch, 2)) dead += await this.deliver(part);
    return dead;
  }

  /**
   * Send with retries on one route; then fall back, split or dead-letter as the failure says. A
   * transient failure (network, timeout, 408, 429, 5xx, `@permanent: false`, a token that cannot be
   * had) is retried for as long as it lasts, with capped backoff: the batch stays pending, in the
   * spool. Only managed mode moves on, to queued ingestion, once streaming has failed
   * `retryMaxAttempts` times or for `retryMaxAgeMs`.
   */
  private async attempt(batch: Batch, payload: Buffer, route: Route, fellBackFor: string | null): Promise<number> {
    const { table, rows } = batch;
    if (fellBackFor) this.metrics.kustoFallbacks.inc({ table, reason: fellBackFor });
    const started = Date.now();
    const canFallBack = this.o.mode === 'managed' && route === 'streaming';
    for (let attempt = 1; ; attempt++) {
      const verdict = await this.sendOnce(table, payload, route, rows);
      if (verdict === null) return 0;
      const spent = canFallBack && (attempt >= this.o.retryMaxAttempts || Date.now() - started >= this.o.retryMaxAgeMs);
      // Shutting down is not a reason to give rows up: they stay pending (and in the spool).
      if (verdict.action === 'retry' && this.closed) throw new Error('sink closed while the batch was being retried; it stays pending');
      if (verdict.action === 'retry' && !spent) {
        if (verdict.reason === 'throttled') this.metrics.kustoThrottled.inc({ table });
        this.metrics.kustoRetries.inc({ table, reason: verdict.reason });
        this.log.warn({ table, route, attempt, rows, reason: verdict.reason, detail: verdict.detail, retryInMs: this.o.retry.delayMs(attempt) }, 'ingestion failed; retrying');
        await this.o.retry.wait(attempt);
        if (this.closed) throw new Error('sink closed while the batch was being retried; it stays pending');
        continue;
      }
      if (verdict.action === 'split' && rows > 1) return this.split(batch);
      if (canFallBack && verdict.action !== 'dead_letter') {
        return this.attempt(batch, payload, 'queued', verdict.action === 'retry' ? 'retries_spent' : verdict.reason);
      }
      this.metrics.kustoPermanentErrors.inc({ table, reason: verdict.reason });
      return this.deadLetter(batch, { reason: verdict.reason, detail: verdict.detail, status: verdict.status, attempts: attempt, route });
    }
  }

  /** One request; null on success, else what the failure means. */
  private async sendOnce(table: TableKey, payload: Buffer, route: Route, rows: number): Promise<Verdict | null> {
    const props = new IngestionProperties({
      database: this.o.database,
      table: this.o.tableNames[table],
      format: this.o.format === 'avro' ? DataFormat.AVRO : DataFormat.MULTIJSON,
      ingestionMappingReference: mappingName(this.o.tableNames[table], this.o.format === 'avro' ? 'avro' : 'json'),
    });
    const body = await gzip(payload, { level: this.o.gzipLevel ?? 6 });
    const stop = this.metrics.kustoRequestDuration.startTimer({ table, route });
    try {
      // The SDK wants a Readable; the payload is gzipped here so its size on the wire is known.
      const stream = new StreamDescriptor(Readable.from([body]), null, CompressionType.GZIP, body.length);
      const request = route === 'streaming' ? this.streaming!.ingestFromStream(stream, props) : this.queued().ingestFromStream(stream, props);
      await withTimeout(request, this.o.requestTimeoutMs);
      stop({ result: 'success' });
      this.metrics.kustoBatches.inc({ table, route, result: 'success' });
      this.metrics.kustoRowsSent.inc({ table }, rows);
      this.metrics.kustoBytesSent.inc({ table, format: this.o.format }, body.length);
      this.metrics.sinkLastSuccess.set({ table }, Date.now() / 1000);
      return null;
    } catch (err) {
      stop({ result: 'error' });
      const verdict = classifyIngestError(err);
      this.metrics.kustoBatches.inc({ table, route, result: verdict.action });
      return verdict;
    }
  }

  private queued(): IngestClient {
    this.queuedClient ??= new IngestClient(connectionFor(ingestUrlOf(this.o), this.o.credential));
    return this.queuedClient;
  }

  /**
   * Keep rows ADX refused for good on disk. When the directory is at its cap this throws: the batch
   * is not taken, stays pending in the spool, and backpressure follows, rather than losing it.
   */
  private async deadLetter(batch: Batch, reason: Record<string, unknown>): Promise<number> {
    const { table, rows } = batch;
    let file: string;
    try {
      file = await this.deadLetters.write(this.o.tableNames[table], this.o.format, this.payloadOf(batch), rows, reason);
    } catch (err) {
      this.log.error({ table, rows, err, ...reason }, 'batch refused by ADX and the dead-letter directory cannot take it; it stays pending');
      throw err;
    }
    this.metrics.sinkDeadLetteredRows.inc({ table, reason: String(reason.reason) }, rows);
    this.log.error({ table, rows, file, ...reason }, 'batch dead-lettered: ADX will not take it (redrive it after fixing the cause: hubble-adx redrive)');
    return rows;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.measureTimer);
    this.streaming?.close();
    this.queuedClient?.close();
  }
}

/**
 * The SDK's streaming call takes no timeout of its own (it applies a 10-minute command timeout), so
 * the wait is bounded here. The abandoned request may still succeed: its rows may then arrive twice,
 * which the Uuid de-duplication view absorbs.
 */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`no answer within sink.kusto.requestTimeoutMs (${ms} ms)`), { code: 'ETIMEDOUT' })), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
    p.catch(() => undefined);
  }
}
