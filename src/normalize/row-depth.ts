import { TABLES, type ColumnSpec, type TableKey } from '../schema/index.js';

const dynamicColumns = new Map<TableKey, string[]>(
  (Object.keys(TABLES) as TableKey[]).map((k) => [k, (TABLES[k].columns as readonly ColumnSpec[]).filter((c) => c.type === 'dynamic').map((c) => c.name)]),
);

/**
 * Whether a value nests deeper than `max` levels, walked without recursion (with an explicit
 * stack) so that the check itself cannot overflow the call stack on the values it is there to stop.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const v = stack.pop() as object;
    const d = depths.pop()!;
    if (d > max) return true;
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'object' && x !== null) (stack.push(x), depths.push(d + 1));
    } else {
      for (const k in v) {
        const x = (v as Record<string, unknown>)[k];
        if (typeof x === 'object' && x !== null) (stack.push(x), depths.push(d + 1));
      }
    }
  }
  return false;
}

/**
 * The first dynamic column of a row nested deeper than `max`, or null. Only dynamic columns hold
 * values as they came: every other column is a scalar. Encoders serialize rows recursively, so
 * a row that passes here always encodes.
 */
export function tooDeepColumn(table: TableKey, row: object, max: number): string | null {
  const r = row as Record<string, unknown>;
  for (const c of dynamicColumns.get(table)!) if (nestsDeeperThan(r[c], max)) return c;
  return null;
}
