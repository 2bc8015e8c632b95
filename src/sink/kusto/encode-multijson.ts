import type { RowOfTable, TableKey } from '../../schema/index.js';

/** Rows as JSON lines (ADX `multijson`), keys exactly the column names. */
export function encodeMultijson<K extends TableKey>(_table: K, rows: readonly RowOfTable[K][]): Promise<Buffer> {
  let text = '';
  for (const row of rows) text += JSON.stringify(row) + '\n';
  return Promise.resolve(Buffer.from(text));
}
