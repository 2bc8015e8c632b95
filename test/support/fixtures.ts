import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './project-root.js';

/** The project's own fixtures (provenance in hubble/SOURCES.md and fluent-bit/README.md). */
export const FIXTURES = join(projectRoot(), 'test', 'fixtures');
export const HUBBLE_DIR = join(FIXTURES, 'hubble');
export const FLUENT_BIT_DIR = join(FIXTURES, 'fluent-bit');

/** Every line of every Hubble fixture file, with where it came from. */
export function hubbleFixtureLines(): { file: string; line: number; text: string }[] {
  const files = [
    ...readdirSync(HUBBLE_DIR).filter((f) => f.endsWith('.jsonl')),
    ...readdirSync(join(HUBBLE_DIR, 'hubble-otel')).map((f) => join('hubble-otel', f)),
  ];
  return files.flatMap((file) =>
    readFileSync(join(HUBBLE_DIR, file), 'utf8')
      .split('\n')
      .map((text, i) => ({ file, line: i + 1, text }))
      .filter((l) => l.text.trim().length > 0),
  );
}

export interface FbCapture {
  name: string;
  body: Buffer;
  headers: Record<string, string>;
}

export function fluentBitCaptures(): FbCapture[] {
  return readdirSync(FLUENT_BIT_DIR)
    .filter((f) => f.endsWith('.1.body'))
    .map((f) => {
      const name = f.replace(/\.1\.body$/, '');
      const meta = JSON.parse(readFileSync(join(FLUENT_BIT_DIR, `${name}.1.headers.json`), 'utf8')) as { headers: Record<string, string> };
      return { name, body: readFileSync(join(FLUENT_BIT_DIR, f)), headers: meta.headers };
    });
}
