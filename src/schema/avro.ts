import { TABLES, type ColumnSpec, type KustoType, type TableKey } from './tables.js';

/**
 * The Avro record schema of each table, generated from the column definitions. Every field is a
 * nullable union; datetime travels as microseconds since the Unix epoch (the ingestion mapping
 * applies DateTimeFromUnixMicroseconds), dynamic columns as typed arrays or JSON text.
 */

const POLICY_RECORD = {
  type: 'record',
  name: 'PolicyRef',
  fields: [
    { name: 'Name', type: ['null', 'string'], default: null },
    { name: 'Namespace', type: ['null', 'string'], default: null },
    { name: 'Kind', type: ['null', 'string'], default: null },
    { name: 'Revision', type: ['null', 'long'], default: null },
    { name: 'Labels', type: ['null', { type: 'array', items: 'string' }], default: null },
  ],
};

const PRIMITIVE: Record<Exclude<KustoType, 'dynamic'>, string> = {
  string: 'string',
  int: 'int',
  long: 'long',
  real: 'double',
  bool: 'boolean',
  datetime: 'long',
};

/** The Avro union branch name a non-null value of this column is written under. */
export function avroBranch(c: ColumnSpec): string {
  if (c.type !== 'dynamic') return PRIMITIVE[c.type];
  return c.avro === 'json' || !c.avro ? 'string' : 'array';
}

function fieldType(c: ColumnSpec, policyDefined: { done: boolean }): unknown {
  if (c.type !== 'dynamic') return PRIMITIVE[c.type];
  switch (c.avro) {
    case 'strings':
      return { type: 'array', items: 'string' };
    case 'policies':
      // A named type is defined once per schema and referred to by name afterwards.
      if (policyDefined.done) return { type: 'array', items: 'PolicyRef' };
      policyDefined.done = true;
      return { type: 'array', items: POLICY_RECORD };
    default:
      return 'string';
  }
}

export function avroSchema(key: TableKey): { type: 'record'; name: string; namespace: string; fields: unknown[] } {
  const policyDefined = { done: false };
  return {
    type: 'record',
    name: TABLES[key].defaultName,
    namespace: 'io.hubbleadx',
    fields: (TABLES[key].columns as readonly ColumnSpec[]).map((c) => ({
      name: c.name,
      type: ['null', fieldType(c, policyDefined)],
      default: null,
    })),
  };
}

/** Avro ingestion mapping: each column from its field; datetimes from microseconds. */
export function avroMapping(key: TableKey): { Column: string; Properties: Record<string, string> }[] {
  return (TABLES[key].columns as readonly ColumnSpec[]).map((c) => {
    const Properties: Record<string, string> = { Field: c.name };
    if (c.type === 'datetime') Properties.Transform = 'DateTimeFromUnixMicroseconds';
    return { Column: c.name, Properties };
  });
}

/** JSON ingestion mapping: each column from the row key of the same name. */
export function jsonMapping(key: TableKey): { Column: string; Properties: Record<string, string> }[] {
  return (TABLES[key].columns as readonly ColumnSpec[]).map((c) => ({ Column: c.name, Properties: { Path: `$.${c.name}` } }));
}
