import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The V8 flags the container runs with, read from the Dockerfile's `ENV NODE_OPTIONS=` line so that
 * benchmarks and tests of the deployed process use the same ones.
 */
export function containerNodeOptions(): string {
  // Works from bench/ and from dist/bench/: the Dockerfile is at the first ancestor holding one.
  let dir = fileURLToPath(new URL('.', import.meta.url));
  for (let i = 0; i < 4; i++, dir = resolve(dir, '..')) {
    try {
      const m = /^ENV NODE_OPTIONS=(?:"([^"]*)"|(\S.*))$/m.exec(readFileSync(resolve(dir, 'Dockerfile'), 'utf8'));
      if (m) return (m[1] ?? m[2]!).trim();
    } catch {
      // not here
    }
  }
  throw new Error('no ENV NODE_OPTIONS line found in the Dockerfile');
}
