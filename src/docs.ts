import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReference } from './config/index.js';
import { kqlFiles, schemaMarkdown } from './schema/index.js';

/**
 * The documentation pages with parts generated from the schema and config definitions, between
 * marker comments, by page (relative to the project root) and section name.
 */
export function generatedSections(): Record<string, Record<string, string>> {
  return {
    'docs/tables.md': { schema: schemaMarkdown() },
    'docs/configuration.md': { config: configReference() },
  };
}

/** A page with its generated sections rewritten from the definitions. */
export function renderPage(page: string, text: string): string {
  const sections = generatedSections()[page];
  if (!sections) throw new Error(`${page} has no generated sections`);
  let out = text;
  for (const [name, body] of Object.entries(sections)) {
    const start = `<!-- generated:${name} -->`;
    const end = `<!-- /generated:${name} -->`;
    const i = out.indexOf(start);
    const j = out.indexOf(end);
    if (i < 0 || j < i) throw new Error(`${page} has no ${start} ... ${end} section`);
    out = `${out.slice(0, i + start.length)}\n${body.trim()}\n${out.slice(j)}`;
  }
  return out;
}

/** Rewrite the generated sections of every page under `root` in place; returns the pages that changed. */
export function updateDocs(root: string): string[] {
  const changed: string[] = [];
  for (const page of Object.keys(generatedSections())) {
    const path = join(root, page);
    const before = readFileSync(path, 'utf8');
    const after = renderPage(page, before);
    if (after !== before) {
      writeFileSync(path, after);
      changed.push(page);
    }
  }
  return changed;
}

/** Write deploy/kusto/*.kql from the schema definition; returns the files that changed. */
export function writeKqlFiles(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const changed: string[] = [];
  for (const [name, text] of Object.entries(kqlFiles())) {
    const path = join(dir, name);
    let before = '';
    try {
      before = readFileSync(path, 'utf8');
    } catch {
      // a new file
    }
    if (before !== text) {
      writeFileSync(path, text);
      changed.push(name);
    }
  }
  return changed;
}
