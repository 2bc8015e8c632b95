import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReference } from './config/index.js';
import { kqlFiles, schemaMarkdown } from './schema/index.js';

/** README sections generated from the schema and config definitions, between marker comments. */
export function generatedSections(): Record<string, string> {
  return { schema: schemaMarkdown(), config: configReference() };
}

export function renderReadme(text: string): string {
  let out = text;
  for (const [name, body] of Object.entries(generatedSections())) {
    const start = `<!-- generated:${name} -->`;
    const end = `<!-- /generated:${name} -->`;
    const i = out.indexOf(start);
    const j = out.indexOf(end);
    if (i < 0 || j < i) throw new Error(`README has no ${start} ... ${end} section`);
    out = `${out.slice(0, i + start.length)}\n${body.trim()}\n${out.slice(j)}`;
  }
  return out;
}

/** Rewrite the generated sections of a README in place; returns whether anything changed. */
export function updateReadme(path: string): boolean {
  const before = readFileSync(path, 'utf8');
  const after = renderReadme(before);
  if (after !== before) writeFileSync(path, after);
  return after !== before;
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
