import { TABLES, type ColumnSpec, type RowOfTable, type TableKey } from '../../schema/index.js';

const datetimeColumns = new Map<TableKey, string[]>(
  (Object.keys(TABLES) as TableKey[]).map((k) => [k, (TABLES[k].columns as readonly ColumnSpec[]).filter((c) => c.type === 'datetime').map((c) => c.name)]),
);

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

/** Rows as JSON lines (ADX `multijson`), keys exactly the column names. */
export function encodeMultijson<K extends TableKey>(table: K, rows: readonly RowOfTable[K][]): Promise<Buffer> {
  const cols = datetimeColumns.get(table)!;
  let text = '';
  for (const row of rows) {
    if (cols.length === 0) {
      text += JSON.stringify(row) + '\n';
      continue;
    }
    const r = row as Record<string, unknown>;
    const copy: Record<string, unknown> = { ...r };
    for (const c of cols) if (typeof r[c] === 'string') copy[c] = toTicksPrecision(r[c]);
    text += JSON.stringify(copy) + '\n';
  }
  return Promise.resolve(Buffer.from(text));
}
