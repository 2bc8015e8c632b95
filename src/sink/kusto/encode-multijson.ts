import { TABLES, type ColumnSpec, type RowOfTable, type TableKey } from '../../schema/index.js';

/**
 * ADX datetimes hold 100 ns ticks: 7 fractional digits. Hubble writes 9; the text is cut to 7 so
 * that ADX never has to round or refuse it.
 */
export function toTicksPrecision(s: string): string {
  const dot = s.indexOf('.', 19);
  if (dot < 0) return s;
  let end = dot + 1;
  while (end < s.length && s.charCodeAt(end) >= 48 && s.charCodeAt(end) <= 57) end++;
  return end - dot - 1 > 7 ? s.slice(0, dot + 8) + s.slice(end) : s;
}

/**
 * What JSON.stringify writes as an escape in a string: `"`, `\`, the control characters and lone
 * surrogates. A string with none of them is written as it is between quotes; any surrogate, even
 * one of a pair, sends the string through JSON.stringify.
 */
// eslint-disable-next-line no-control-regex -- the control characters are what is looked for
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A column's value as JSON, exactly as JSON.stringify writes it. Strings (most values) and numbers
 * are written without calling it: the call, once per column, cost more than the writing (bench).
 */
export function jsonValue(v: unknown): string | undefined {
  if (typeof v === 'string') return ESCAPED.test(v) ? JSON.stringify(v) : `"${v}"`;
  if (typeof v === 'number') return Number.isFinite(v) ? `${v}` : 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return JSON.stringify(v);
}

/**
 * One row as a JSON line (ADX `multijson`), keys exactly the column names, in column order. Null
 * columns are left out (the JSON mapping reads a missing path as null): most of a flow's ninety
 * columns are null, and their names were half of every row's bytes. The line is put together
 * column by column: a JSON.stringify replacer would take V8 off its fast path for the whole row.
 */
export function multijsonLine<K extends TableKey>(table: K): (row: RowOfTable[K]) => string {
  const cols = TABLES[table].columns as readonly ColumnSpec[];
  const names = cols.map((c) => c.name);
  const keys = cols.map((c) => `${JSON.stringify(c.name)}:`);
  const isDatetime = cols.map((c) => c.type === 'datetime');
  return (row) => {
    const r = row as Record<string, unknown>;
    let line = '{';
    for (let i = 0; i < names.length; i++) {
      const v = r[names[i]!];
      if (v === null || v === undefined) continue;
      const json = jsonValue(typeof v === 'string' && isDatetime[i] ? toTicksPrecision(v) : v);
      if (json === undefined) continue;
      if (line.length > 1) line += ',';
      line += keys[i]!;
      line += json;
    }
    return line + '}';
  };
}

/** Rows as JSON lines, one text. */
export function encodeMultijson<K extends TableKey>(table: K, rows: readonly RowOfTable[K][]): Promise<Buffer> {
  const line = multijsonLine(table);
  let text = '';
  for (const r of rows) text += line(r) + '\n';
  return Promise.resolve(Buffer.from(text));
}
