import type { TableKey } from './tables.js';

/** The table name each table key has in a database (sink.tables). */
export type TableNames = Record<TableKey, string>;

/** A stored function: `.create-or-alter function` is made from it, and the language service checks its body. */
export interface FunctionDefinition {
  name: string;
  params: string;
  doc: string;
  body: string;
}
