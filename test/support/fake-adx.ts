/**
 * A local server that speaks the parts of Azure Data Explorer's REST protocol that the official SDK
 * uses for ingestion: auth metadata, streaming ingest, and the two management commands of queued
 * ingestion (whose blobs and queue messages go to Azurite and are read back by `drainQueue`).
 * Avro is decoded with avsc, an implementation independent of the avro-js encoder under test, and
 * mapped to columns with the ingestion mappings the KQL creates.
 */
import { gunzipSync } from 'node:zlib';
import { BlobClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import avsc from 'avsc';
import Fastify, { type FastifyInstance } from 'fastify';
import { TABLES, TABLE_KEYS, avroMapping, jsonMapping, mappingName, type ColumnSpec, type KustoType, type TableKey } from '../../src/schema/index.js';

export type Fault =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | { destroy: true }
  | { delayMs: number };

interface Mapping {
  table: string;
  kind: 'avro' | 'json';
  columns: { Column: string; Properties: Record<string, string> }[];
}

export interface IngestRequest {
  table: string;
  format: string;
  mapping: string | null;
  bytes: number;
  status: number;
}

const KEYS = TABLE_KEYS;

export function adxError(code: string, message: string, permanent: boolean) {
  return { error: { code, message, '@type': `Kusto.DataNode.Exceptions.${code}`, '@message': message, '@permanent': permanent } };
}

export class FakeAdx {
  readonly rows = new Map<string, Record<string, unknown>[]>();
  readonly requests: IngestRequest[] = [];
  readonly mgmtCommands: string[] = [];
  private readonly mappings = new Map<string, Mapping>();
  private readonly types = new Map<string, Map<string, KustoType>>();
  private faults: Fault[] = [];
  streamingEnabled = true;
  /** While true, every streaming request is answered `downStatus` (an outage). */
  down = false;
  downStatus: 503 | 429 | 500 = 503;
  /** Added to every streaming request: a slow (rate-limited) ADX. */
  delayEachMs = 0;
  /**
   * Benchmarks: acknowledge multijson without decoding it, keeping only the row count (a real ADX
   * does not share the load generator's core). Rows are counted in `counted`, not stored.
   */
  countOnly = false;
  counted = 0;
  app: FastifyInstance;
  url = '';
  /** For queued ingestion: where .get ingestion resources points the SDK (Azurite). */
  storage: { blobContainerSas: string; queueSas: string } | null = null;

  /**
   * `keep`: for these tables, only these columns of each stored row (every column is still mapped
   * and type-checked). A long torture run otherwise holds every column of a million rows.
   */
  constructor(private readonly keep: Readonly<Record<string, readonly string[]>> = {}) {
    for (const k of KEYS) {
      const name = TABLES[k].defaultName;
      this.rows.set(name, []);
      this.types.set(name, new Map((TABLES[k].columns as readonly ColumnSpec[]).map((c) => [c.name, c.type])));
      this.mappings.set(mappingName(name, 'avro'), { table: name, kind: 'avro', columns: avroMapping(k) });
      this.mappings.set(mappingName(name, 'json'), { table: name, kind: 'json', columns: jsonMapping(k) });
    }
    this.app = Fastify({ logger: false, bodyLimit: 64 * 1024 * 1024 });
    this.app.removeAllContentTypeParsers();
    this.app.addContentTypeParser('*', { parseAs: 'buffer' }, (_r, b, done) => done(null, b));
    this.app.get('/v1/rest/auth/metadata', async (_req, reply) => reply.code(404).send({}));
    this.app.post('/v1/rest/ingest/:db/:table', async (req, reply) => {
      const { table } = req.params as { db: string; table: string };
      const q = req.query as { streamFormat?: string; mappingName?: string };
      const body = req.body as Buffer;
      const record = (status: number) => this.requests.push({ table, format: q.streamFormat ?? '', mapping: q.mappingName ?? null, bytes: body.length, status });
      if (this.delayEachMs > 0) await new Promise((r) => setTimeout(r, this.delayEachMs));
      if (this.down) {
        record(this.downStatus);
        if (this.downStatus === 429) return reply.code(429).header('Retry-After', '1').send(adxError('TooManyRequests', 'throttled', false));
        return reply.code(this.downStatus).send(adxError('ServiceUnavailable', 'outage', false));
      }
      const fault = this.faults.shift();
      if (fault) {
        if ('destroy' in fault) {
          record(0);
          req.raw.socket.destroy();
          return reply;
        }
        if ('delayMs' in fault) await new Promise((r) => setTimeout(r, fault.delayMs));
        else {
          record(fault.status);
          return reply.code(fault.status).headers(fault.headers ?? {}).send(fault.body ?? adxError('InternalServiceError', 'injected', false));
        }
      }
      if (!this.streamingEnabled) {
        record(400);
        return reply.code(400).send(adxError('BadRequest_StreamingIngestionPolicyNotEnabled', `Streaming ingestion policy is not enabled for the table '${table}'`, true));
      }
      const raw = req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
      if (this.countOnly && (q.streamFormat === 'multijson' || q.streamFormat === 'avro')) {
        let n = 0;
        if (q.streamFormat === 'avro') n = await countAvroRecords(raw);
        else for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) n++;
        this.counted += n;
        record(200);
        return { Tables: [{ TableName: 'Table_0', Columns: [{ ColumnName: 'ConsumedRecordsCount', DataType: 'Int64' }], Rows: [[n]] }] };
      }
      if (raw.length > 4 * 1024 * 1024) {
        record(413);
        return reply.code(413).send(adxError('Request_EntityTooLarge', 'Request data size exceeds the maximum for streaming ingestion', true));
      }
      const result = await this.ingest(table, q.streamFormat ?? '', q.mappingName ?? null, raw);
      if (typeof result === 'string') {
        record(400);
        return reply.code(400).send(adxError('BadRequest_InvalidData', result, true));
      }
      record(200);
      return {
        Tables: [
          {
            TableName: 'Table_0',
            Columns: [
              { ColumnName: 'ConsumedRecordsCount', DataType: 'Int64' },
              { ColumnName: 'UpdatePolicyStatus', DataType: 'String' },
              { ColumnName: 'UpdatePolicyFailureCode', DataType: 'String' },
              { ColumnName: 'UpdatePolicyFailureReason', DataType: 'String' },
            ],
            Rows: [[result, 'Inactive', 'Unknown', null]],
          },
        ],
      };
    });
    this.app.post('/v1/rest/mgmt', async (req, reply) => {
      const { csl } = JSON.parse((req.body as Buffer).toString('utf8')) as { csl: string };
      this.mgmtCommands.push(csl);
      const v1 = (cols: string[], rows: unknown[][]) => ({
        Tables: [{ TableName: 'Table_0', Columns: cols.map((c) => ({ ColumnName: c, DataType: 'String', ColumnType: 'string' })), Rows: rows }],
      });
      if (csl.startsWith('.get ingestion resources') && this.storage) {
        return v1(['ResourceTypeName', 'StorageRoot'], [
          ['SecuredReadyForAggregationQueue', this.storage.queueSas],
          ['FailedIngestionsQueue', this.storage.queueSas],
          ['SuccessfulIngestionsQueue', this.storage.queueSas],
          ['TempStorage', this.storage.blobContainerSas],
        ]);
      }
      if (csl.startsWith('.get kusto identity token')) return v1(['AuthorizationContext'], [['fake-authorization-context']]);
      return reply.code(400).send(adxError('BadRequest_SyntaxError', `unsupported command ${csl}`, true));
    });
  }

  async start(): Promise<string> {
    await this.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = this.app.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${addr.port}`;
    return this.url;
  }

  stop(): Promise<void> {
    return this.app.close();
  }

  /** Back to a healthy, empty ADX (between tests). */
  reset(): void {
    for (const rows of this.rows.values()) rows.length = 0;
    this.requests.length = 0;
    this.faults = [];
    this.streamingEnabled = true;
    this.down = false;
    this.downStatus = 503;
    this.delayEachMs = 0;
  }

  /** The next requests to the streaming endpoint meet these faults, in order. */
  inject(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  table(name: string): Record<string, unknown>[] {
    return this.rows.get(name) ?? [];
  }

  /** Decode, map and type-check one payload; the number of rows stored, or why it was refused. */
  private async ingest(table: string, format: string, mapping: string | null, raw: Buffer): Promise<number | string> {
    const m = mapping ? this.mappings.get(mapping) : undefined;
    if (!m || m.table !== table) return `mapping '${mapping}' was not found for table '${table}'`;
    let records: Record<string, unknown>[];
    if (format === 'avro' || format === 'apacheavro') {
      if (m.kind !== 'avro') return `mapping '${mapping}' is not an Avro mapping`;
      records = await decodeAvro(raw);
    } else if (format === 'multijson' || format === 'json') {
      if (m.kind !== 'json') return `mapping '${mapping}' is not a JSON mapping`;
      records = raw.toString('utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
    } else return `format '${format}' is not supported here`;
    const types = this.types.get(table)!;
    const out: Record<string, unknown>[] = [];
    for (const rec of records) {
      const row: Record<string, unknown> = {};
      for (const col of m.columns) {
        const p = col.Properties;
        let v = p.Field !== undefined ? rec[p.Field] : rec[p.Path!.slice(2)];
        if (v === undefined) v = null;
        if (p.Transform === 'DateTimeFromUnixMicroseconds' && v !== null) v = microsToIso(Number(v));
        const err = checkType(col.Column, types.get(col.Column)!, v);
        if (err) return err;
        row[col.Column] = normalizeValue(types.get(col.Column)!, v);
      }
      out.push(row);
    }
    const kept = this.keep[table];
    const stored = kept ? out.map((r) => Object.fromEntries(kept.map((c) => [c, r[c]]))) : out;
    for (const r of stored) this.rows.get(table)!.push(r);
    return out.length;
  }

  /** Queued ingestion: read the SDK's queue messages from Azurite, fetch each blob, ingest it. */
  async drainQueue(queueSas: string): Promise<number> {
    const queue = new QueueClient(queueSas);
    let n = 0;
    for (;;) {
      const got = await queue.receiveMessages({ numberOfMessages: 32 });
      if (got.receivedMessageItems.length === 0) return n;
      for (const msg of got.receivedMessageItems) {
        const info = JSON.parse(Buffer.from(msg.messageText, 'base64').toString('utf8')) as {
          BlobPath: string;
          TableName: string;
          AdditionalProperties: { format: string; ingestionMappingReference?: string; authorizationContext?: string };
        };
        if (info.AdditionalProperties.authorizationContext !== 'fake-authorization-context') throw new Error('queue message without the identity token');
        const blob = await new BlobClient(info.BlobPath).downloadToBuffer();
        const raw = info.BlobPath.split('?')[0]!.endsWith('.gz') ? gunzipSync(blob) : blob;
        const r = await this.ingest(info.TableName, info.AdditionalProperties.format, info.AdditionalProperties.ingestionMappingReference ?? null, raw);
        if (typeof r === 'string') throw new Error(r);
        n += r;
        await queue.deleteMessage(msg.messageId, msg.popReceipt);
      }
    }
  }
}

/** Records of an Avro container file, counted without decoding them (avsc hands back raw bytes). */
function countAvroRecords(raw: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const decoder = new avsc.streams.BlockDecoder({ noDecode: true });
    decoder.on('data', () => n++);
    decoder.on('error', reject);
    decoder.on('end', () => resolve(n));
    decoder.end(raw);
  });
}

async function decodeAvro(raw: Buffer): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const out: Record<string, unknown>[] = [];
    const decoder = new avsc.streams.BlockDecoder();
    decoder.on('data', (r: Record<string, unknown>) => out.push(JSON.parse(JSON.stringify(r)) as Record<string, unknown>));
    decoder.on('error', reject);
    decoder.on('end', () => resolve(out));
    decoder.end(raw);
  });
}

/** ADX datetime text: 7 fractional digits (100 ns ticks). */
function microsToIso(us: number): string {
  const sec = Math.floor(us / 1e6);
  const frac = us - sec * 1e6;
  return `${new Date(sec * 1000).toISOString().slice(0, 19)}.${String(frac).padStart(6, '0')}0Z`;
}

function checkType(col: string, type: KustoType, v: unknown): string | null {
  if (v === null) return null;
  const ok =
    type === 'string' ? typeof v === 'string'
    : type === 'int' || type === 'long' || type === 'real' ? typeof v === 'number'
    : type === 'bool' ? typeof v === 'boolean'
    : type === 'datetime' ? typeof v === 'string' && !Number.isNaN(Date.parse(v))
    : true;
  return ok ? null : `column '${col}' of type ${type} cannot hold ${JSON.stringify(v).slice(0, 60)}`;
}

function normalizeValue(type: KustoType, v: unknown): unknown {
  if (v === null) return null;
  if (type === 'datetime') return microsToIso(Math.round(Date.parse(v as string) * 1000) + subMillisMicros(v as string));
  // Open-ended dynamic columns travel in Avro as JSON text; the fake stores what that text holds.
  if (type === 'dynamic' && typeof v === 'string') {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }
  return v;
}

function subMillisMicros(s: string): number {
  const m = /\.\d{3}(\d{0,3})/.exec(s);
  return m ? Number((m[1] ?? '').padEnd(3, '0')) : 0;
}
