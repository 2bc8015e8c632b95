import { TABLES, type ColumnSpec, type TableKey } from './tables.js';

/** `.create-merge table`: creates the table, or adds the columns a newer schema version brings. */
export function createTableCommand(key: TableKey, tableName: string = TABLES[key].defaultName): string {
  const cols = (TABLES[key].columns as readonly ColumnSpec[]).map((c) => `${c.name}:${c.type}`).join(', ');
  return `.create-merge table ${tableName} (${cols})`;
}

/** The README's table schema section. */
export function schemaMarkdown(): string {
  const parts: string[] = [];
  for (const key of Object.keys(TABLES) as TableKey[]) {
    parts.push(`### ${TABLES[key].defaultName}\n`);
    parts.push('| column | type | meaning |', '|---|---|---|');
    for (const c of TABLES[key].columns as readonly ColumnSpec[]) parts.push(`| ${c.name} | ${c.type} | ${c.doc.replace(/\|/g, '\\|')} |`);
    parts.push('');
  }
  return parts.join('\n');
}
