import { createRequire } from 'node:module';
import { TABLES, avroBranch, avroSchema, type ColumnSpec, type RowOfTable, type TableKey } from '../../schema/index.js';
import { rfc3339ToMicros } from './datetime.js';

const require = createRequire(import.meta.url);
const schemas = require('avro-js/lib/schemas.js') as typeof import('avro-js/lib/schemas.js');
const files = require('avro-js/lib/files.js') as typeof import('avro-js/lib/files.js');

type Wrap = (v: unknown) => unknown;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

// avro-js writes a union from a value wrapped in its branch name ({"string": "x"}); these
// converters, one per column and built once per table, do that and coerce to the branch type.
const wrapPolicy = (p: unknown): unknown => {
  const r = (p ?? {}) as Record<string, unknown>;
  const s = (v: unknown) => (typeof v === 'string' ? { string: v } : null);
  return {
    Name: s(r.Name),
    Namespace: s(r.Namespace),
    Kind: s(r.Kind),
    Revision: typeof r.Revision === 'number' && Number.isSafeInteger(r.Revision) ? { long: r.Revision } : null,
    Labels: Array.isArray(r.Labels) ? { array: r.Labels.map(String) } : null,
  };
};

function converter(c: ColumnSpec): Wrap {
  switch (c.type) {
    case 'string':
      return (v) => (typeof v === 'string' ? { string: v } : null);
    case 'int':
      return (v) => (typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX ? { int: v } : null);
    case 'long':
      return (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? { long: v } : null);
    case 'real':
      return (v) => (typeof v === 'number' ? { double: v } : null);
    case 'bool':
      return (v) => (typeof v === 'boolean' ? { boolean: v } : null);
    case 'datetime':
      return (v) => {
        const us = typeof v === 'string' ? rfc3339ToMicros(v) : null;
        return us === null ? null : { long: us };
      };
    case 'dynamic':
      if (c.avro === 'strings') return (v) => (Array.isArray(v) ? { array: v.map(String) } : null);
      if (c.avro === 'policies') return (v) => (Array.isArray(v) ? { array: v.map(wrapPolicy) } : null);
      return (v) => (v === null || v === undefined ? null : { [avroBranch(c)]: JSON.stringify(v) });
  }
}

interface TableCodec {
  schema: ReturnType<typeof avroSchema>;
  names: string[];
  wraps: Wrap[];
}

const codecs = new Map<TableKey, TableCodec>();

function codecFor(table: TableKey): TableCodec {
  let c = codecs.get(table);
  if (!c) {
    const cols = TABLES[table].columns as readonly ColumnSpec[];
    c = { schema: avroSchema(table), names: cols.map((x) => x.name), wraps: cols.map(converter) };
    schemas.createType(c.schema); // validate the generated schema once, loudly
    codecs.set(table, c);
  }
  return c;
}

/** Rows to one Avro object container file (codec null: the request itself is gzipped). */
export function encodeAvro<K extends TableKey>(table: K, rows: readonly RowOfTable[K][]): Promise<Buffer> {
  const codec = codecFor(table);
  return new Promise((resolve, reject) => {
    const encoder = new files.streams.BlockEncoder(codec.schema, { codec: 'null', blockSize: 256 * 1024 });
    const chunks: Buffer[] = [];
    encoder.on('data', (b: Buffer) => chunks.push(b));
    encoder.on('error', reject);
    encoder.on('end', () => resolve(Buffer.concat(chunks)));
    const { names, wraps } = codec;
    for (const row of rows) {
      const src = row as Record<string, unknown>;
      const rec: Record<string, unknown> = {};
      for (let i = 0; i < names.length; i++) rec[names[i]!] = wraps[i]!(src[names[i]!]);
      encoder.write(rec);
    }
    encoder.end();
  });
}
