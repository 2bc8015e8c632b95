/**
 * The Kusto language service (@kusto/language-service-next) loaded in Node, with a database built
 * from hubble-adx's own schema definition and stored functions.
 */
import { createRequire } from 'node:module';
import { TABLES, TABLE_KEYS, functionDefinitions, type ColumnSpec, type TableKey } from '../../src/schema/index.js';

const require = createRequire(import.meta.url);

interface Diagnostic {
  Code: string;
  Message: string;
  Severity: string;
  Start: number;
}

// The bridge defines its API as globals (a .NET runtime translated to JavaScript).
require('@kusto/language-service-next/bridge.js');
require('@kusto/language-service-next/Kusto.Language.Bridge.js');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const K = (globalThis as any).Kusto.Language;

function tableSymbol(key: TableKey, name: string = TABLES[key].defaultName) {
  const schema = `(${(TABLES[key].columns as readonly ColumnSpec[]).map((c) => `${c.name}:${c.type}`).join(', ')})`;
  return K.Symbols.TableSymbol.From(schema).WithName(name);
}

const symbols = [
  ...TABLE_KEYS.map((k) => tableSymbol(k)),
  // The de-duplication materialized view (deploy/kusto/04-dedup-view.kql): the flows' columns.
  tableSymbol('flows', 'HubbleFlowsDedup'),
  ...functionDefinitions().map((f) => new K.Symbols.FunctionSymbol.$ctor16(f.name, `(${f.params})`, `{ ${f.body} }`, f.doc)),
];
const globals = K.GlobalState.Default.WithDatabase(new K.Symbols.DatabaseSymbol.ctor('hubble', symbols));

/** Errors the language service reports for one query or command, against the hubble database. */
export function kqlErrors(text: string): string[] {
  const code = K.KustoCode.ParseAndAnalyze(text, globals);
  const diags = code.GetDiagnostics();
  const out: string[] = [];
  for (let i = 0; i < diags.Count; i++) {
    const d = diags.getItem(i) as Diagnostic;
    if (String(d.Severity) === 'Error') out.push(`${d.Code} ${d.Message} at ${d.Start}: ${JSON.stringify(text.slice(Math.max(0, d.Start - 20), d.Start + 30))}`);
  }
  return out;
}

/** The commands of a .kql script: blocks separated by blank lines, comments dropped. */
export function kqlCommands(script: string): string[] {
  return script
    .split(/\n\s*\n/)
    .map((b) => b.split('\n').filter((l) => !l.trim().startsWith('//')).join('\n').trim())
    .filter((b) => b.length > 0);
}

/** The columns (name and type) of what a query returns, as the language service infers them. */
export function kqlResultColumns(query: string): { name: string; type: string }[] {
  const code = K.KustoCode.ParseAndAnalyze(query, globals);
  const columns = code.ResultType?.Columns;
  if (!columns) throw new Error(`not a tabular query: ${query}`);
  const out: { name: string; type: string }[] = [];
  for (let i = 0; i < columns.Count; i++) {
    const c = columns.getItem(i) as { Name: string; Type: { Name: string } };
    out.push({ name: c.Name, type: c.Type.Name });
  }
  return out;
}
