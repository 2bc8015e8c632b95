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

/** The row being stringified: only its own null columns are left out, never a null inside a value. */
let root: unknown = null;
function omitNullColumns(this: unknown, _key: string, value: unknown): unknown {
  return value === null && this === root ? undefined : value;
}

/**
 * One row as a JSON line (ADX `multijson`), keys exactly the column names. Null columns are left
 * out (the JSON mapping reads a missing path as null): most of a flow's ninety columns are null,
 * and their names were half of every row's bytes.
 */
export function multijsonLine<K extends TableKey>(table: K): (row: RowOfTable[K]) => string {
  const cols = datetimeColumns.get(table)!;
  const [first, ...others] = cols;
  return (row) => {
    const r = row as Record<string, unknown>;
    try {
      let needsCopy = false;
      for (const c of others) if (typeof r[c] === 'string' && toTicksPrecision(r[c]) !== r[c]) needsCopy = true;
      if (needsCopy) {
        const copy: Record<string, unknown> = { ...r };
        for (const c of cols) if (typeof r[c] === 'string') copy[c] = toTicksPrecision(r[c]);
        root = copy;
        return JSON.stringify(copy, omitNullColumns);
      }
      root = r;
      const json = JSON.stringify(r, omitNullColumns);
      // The first column of every table is its datetime TimeGenerated: cut its digits in the text
      // itself rather than copying a row of ninety fields.
      const t = first !== undefined ? r[first] : undefined;
      if (typeof t !== 'string') return json;
      const cut = toTicksPrecision(t);
      if (cut === t) return json;
      const prefix = `{"${first}":"`;
      if (json.startsWith(prefix) && json.startsWith(t, prefix.length)) return prefix + cut + json.slice(prefix.length + t.length);
      root = { ...r, [first!]: cut };
      return JSON.stringify(root, omitNullColumns);
    } finally {
      root = null;
    }
  };
}

/** Rows as JSON lines, one text. */
export function encodeMultijson<K extends TableKey>(table: K, rows: readonly RowOfTable[K][]): Promise<Buffer> {
  const line = multijsonLine(table);
  let text = '';
  for (const r of rows) text += line(r) + '\n';
  return Promise.resolve(Buffer.from(text));
}
