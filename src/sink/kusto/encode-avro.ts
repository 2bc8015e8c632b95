import { createRequire } from 'node:module';
import { TABLES, avroSchema, type ColumnSpec, type RowOfTable, type TableKey } from '../../schema/index.js';
import { rfc3339ToMicros } from './datetime.js';

const require = createRequire(import.meta.url);
const schemas = require('avro-js/lib/schemas.js') as typeof import('avro-js/lib/schemas.js');
const files = require('avro-js/lib/files.js') as typeof import('avro-js/lib/files.js');

type Convert = (v: unknown) => unknown;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

const allStrings = (v: unknown[]): boolean => {
  for (let i = 0; i < v.length; i++) if (typeof v[i] !== 'string') return false;
  return true;
};

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
      if (c.avro === 'strings') return (v) => (Array.isArray(v) ? (allStrings(v) ? v : v.map(String)) : null);
      if (c.avro === 'policies') return (v) => (Array.isArray(v) ? v.map(policyRef) : null);
      return (v) => (v === null || v === undefined ? null : JSON.stringify(v));
    default:
      return null;
  }
}

function policyRef(p: unknown): unknown {
  const r = (p ?? {}) as Record<string, unknown>;
  return { Name: r.Name, Namespace: r.Namespace, Kind: r.Kind, Revision: r.Revision, Labels: Array.isArray(r.Labels) ? (allStrings(r.Labels) ? r.Labels : r.Labels.map(String)) : null };
}

interface TableCodec {
  type: unknown;
  converted: { name: string; convert: Convert }[];
}

const codecs = new Map<TableKey, TableCodec>();

function codecFor(table: TableKey): TableCodec {
  let c = codecs.get(table);
  if (!c) {
    const cols = TABLES[table].columns as readonly ColumnSpec[];
    const converted = cols.flatMap((x) => {
      const convert = converter(x);
      return convert ? [{ name: x.name, convert }] : [];
    });
    c = { type: schemas.createType(avroSchema(table), { typeHook: optionalUnions }), converted };
    codecs.set(table, c);
  }
  return c;
}

/** Rows to one Avro object container file (codec null: the request itself is gzipped). */
export function encodeAvro<K extends TableKey>(table: K, rows: readonly RowOfTable[K][]): Promise<Buffer> {
  const codec = codecFor(table);
  return new Promise((resolve, reject) => {
    const encoder = new files.streams.BlockEncoder(codec.type, { codec: 'null', blockSize: 256 * 1024 });
    const chunks: Buffer[] = [];
    encoder.on('data', (b: Buffer) => chunks.push(b));
    encoder.on('error', reject);
    encoder.on('end', () => resolve(Buffer.concat(chunks)));
    const { converted } = codec;
    for (const row of rows) {
      const src = row as Record<string, unknown>;
      // A copy per row (the stream may hold a written object until it is drained); a spread copy
      // keeps the row's shape, so that only the converted columns are stored again.
      const rec: Record<string, unknown> = { ...src };
      for (let i = 0; i < converted.length; i++) {
        const { name, convert } = converted[i]!;
        rec[name] = convert(src[name]);
      }
      encoder.write(rec);
    }
    encoder.end();
  });
}
