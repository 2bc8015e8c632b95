import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { batchOf, type Batch, type ChunkWriter, type EncodedChunk } from '../../batch/index.js';
import { timeOfRow } from '../lines-writer.js';
import { growScratch, returnScratch, takeScratch } from '../scratch.js';
import { TABLES, avroSchema, type ColumnSpec, type RowOfTable, type TableKey } from '../../schema/index.js';
import { rfc3339ToMicros } from './datetime.js';
import { boundedJson } from '../../json-values.js';

const require = createRequire(import.meta.url);
const schemas = require('avro-js/lib/schemas.js') as typeof import('avro-js/lib/schemas.js');
const files = require('avro-js/lib/files.js') as typeof import('avro-js/lib/files.js');
const utils = require('avro-js/lib/utils.js') as typeof import('avro-js/lib/utils.js');
type AvroType = import('avro-js/lib/schemas.js').AvroType;
type Tap = import('avro-js/lib/utils.js').Tap;

type Convert = (v: unknown) => unknown;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

const allStrings = (v: unknown[]): boolean => {
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return false;
  return true;
};

/** An element of a strings column that is not one (normalize keeps those out): its JSON text, never String() of a value from input. */
const asStrings = (v: unknown[]): string[] => (allStrings(v) ? (v as string[]) : v.map((x) => (typeof x === 'string' ? x : boundedJson(x))));

/**
 * Every union in hubble-adx's schemas is ["null", T], and avro-js writes a union only from a value
 * wrapped in its branch name ({"string": "x"}): an object per non-null field, plus an Object.keys
 * per union written, which the profile showed as most of the encoding cost. This union, handed to
 * avro-js through its typeHook, writes the same bytes (branch index, then the value through the
 * branch's own avro-js type) from the plain value, and null for a value the branch cannot hold.
 */
class OptionalUnion extends schemas.types.UnionType {
  private readonly fits: (v: unknown) => boolean;

  constructor(attrs: unknown[], opts: unknown) {
    super(attrs, opts);
    this.fits = fitsBranch(attrs[1]);
  }

  override _write(tap: { writeLong(n: number): void }, val: unknown): void {
    if (val === null || val === undefined || !this.fits(val)) {
      tap.writeLong(0);
      return;
    }
    tap.writeLong(1);
    this._types[1]!._write(tap, val);
  }

  override _check(val: unknown): boolean {
    return val === null || val === undefined || (this.fits(val) && this._types[1]!._check(val));
  }
}

function fitsBranch(branch: unknown): (v: unknown) => boolean {
  const name = typeof branch === 'string' ? branch : (branch as { type?: string }).type;
  switch (name) {
    case 'string':
      return (v) => typeof v === 'string';
    case 'int':
      return (v) => typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX;
    case 'long':
      return (v) => typeof v === 'number' && Number.isSafeInteger(v);
    case 'double':
      return (v) => typeof v === 'number';
    case 'boolean':
      return (v) => typeof v === 'boolean';
    case 'array':
      return (v) => Array.isArray(v);
    default:
      return (v) => typeof v === 'object';
  }
}

const optionalUnions = (attrs: unknown, opts: unknown) =>
  Array.isArray(attrs) && attrs.length === 2 && attrs[0] === 'null' ? new OptionalUnion(attrs, opts) : undefined;

/** Row values whose row type differs from their Avro type; every other column is written as is. */
function converter(c: ColumnSpec): Convert | null {
  switch (c.type) {
    case 'datetime':
      return (v) => (typeof v === 'string' ? rfc3339ToMicros(v) : null);
    case 'dynamic':
      if (c.avro === 'strings') return (v) => (Array.isArray(v) ? asStrings(v) : null);
      if (c.avro === 'policies') return (v) => (Array.isArray(v) ? v.map(policyRef) : null);
      return (v) => (v === null || v === undefined ? null : JSON.stringify(v));
    default:
      return null;
  }
}

function policyRef(p: unknown): unknown {
  const r = (p ?? {}) as Record<string, unknown>;
  return { Name: r.Name, Namespace: r.Namespace, Kind: r.Kind, Revision: r.Revision, Labels: Array.isArray(r.Labels) ? asStrings(r.Labels) : null };
}

interface TableCodec {
  type: AvroType;
  converted: { name: string; convert: Convert }[];
  /** The object container header: schema, null codec, this process's sync marker. */
  header: Buffer;
}

const codecs = new Map<TableKey, TableCodec>();
const SYNC = randomBytes(16);
const LONG = schemas.createType('long');

function codecFor(table: TableKey): TableCodec {
  let c = codecs.get(table);
  if (!c) {
    const cols = TABLES[table].columns as readonly ColumnSpec[];
    const converted = cols.flatMap((x) => {
      const convert = converter(x);
      return convert ? [{ name: x.name, convert }] : [];
    });
    const type = schemas.createType(avroSchema(table), { typeHook: optionalUnions });
    const meta = { 'avro.schema': Buffer.from(JSON.stringify(avroSchema(table))), 'avro.codec': Buffer.from('null') };
    const header = files.HEADER_TYPE.toBuffer({ magic: files.MAGIC_BYTES, meta, sync: SYNC });
    c = { type, converted, header };
    codecs.set(table, c);
  }
  return c;
}

/**
 * Rows of one table as Avro datums, written into one growing buffer as they are made (no object
 * per row survives the call). The datums are framed into an object container file per request
 * to ADX (`avroContainer`).
 */
export class AvroWriter<K extends TableKey> implements ChunkWriter<RowOfTable[K]> {
  private readonly codec: TableCodec;
  private readonly tap: Tap;
  private readonly ends: number[] = [];
  private readonly times: number[] = [];

  constructor(table: K) {
    this.codec = codecFor(table);
    this.tap = new utils.Tap(takeScratch(64 * 1024));
  }

  add(row: RowOfTable[K]): void {
    const src = row as Record<string, unknown>;
    // A spread copy keeps the row's shape, so that only the converted columns are stored again.
    const rec: Record<string, unknown> = { ...src };
    const { converted, type } = this.codec;
    for (let i = 0; i < converted.length; i++) {
      const { name, convert } = converted[i]!;
      rec[name] = convert(src[name]);
    }
    const tap = this.tap;
    const start = tap.pos;
    try {
      type._write(tap, rec);
      if (!tap.isValid()) {
        tap.buf = growScratch(tap.buf, start, (tap.pos - start) * 2 + start);
        tap.pos = start;
        type._write(tap, rec);
      }
    } catch (err) {
      tap.pos = start;
      throw err;
    }
    this.ends.push(tap.pos);
    this.times.push(timeOfRow(row));
  }

  finish(): EncodedChunk | null {
    const rows = this.ends.length;
    const data = rows === 0 ? null : Buffer.from(this.tap.buf.subarray(0, this.tap.pos));
    returnScratch(this.tap.buf);
    this.tap.buf = Buffer.alloc(0);
    if (data === null) return null;
    return { data, rows, ends: Uint32Array.from(this.ends), times: Float64Array.from(this.times) };
  }
}

/** A batch's datums as one Avro object container file of one block (codec null: the request is gzipped). */
export function avroContainer(batch: Batch): Buffer {
  const { header } = codecFor(batch.table);
  return Buffer.concat([header, LONG.toBuffer(batch.rows), LONG.toBuffer(batch.bytes), ...batch.chunks.map((c) => c.data), SYNC]);
}

/** The datums of an object container file (a dead-letter batch), as a chunk to send again. */
export async function avroChunkOf(file: Buffer): Promise<EncodedChunk> {
  const datums: Buffer[] = [];
  const decoder = new files.streams.BlockDecoder({ decode: false });
  const done = new Promise<void>((resolve, reject) => {
    decoder.on('data', (b: Buffer) => datums.push(b));
    decoder.on('end', resolve);
    decoder.on('error', reject);
  });
  decoder.end(file);
  await done;
  const ends = new Uint32Array(datums.length);
  let at = 0;
  datums.forEach((d, i) => (ends[i] = at += d.length));
  return { data: Buffer.concat(datums), rows: datums.length, ends, times: new Float64Array(datums.length).fill(Number.NaN) };
}

/** Rows to one Avro object container file. */
export function encodeAvro<K extends TableKey>(table: K, rows: readonly RowOfTable[K][]): Promise<Buffer> {
  const w = new AvroWriter(table);
  for (const row of rows) w.add(row);
  const chunk = w.finish();
  return Promise.resolve(avroContainer(batchOf(table, chunk ? [chunk] : [])));
}
