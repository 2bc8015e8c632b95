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
      const json = JSON.stringify(typeof v === 'string' && isDatetime[i] ? toTicksPrecision(v) : v);
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
