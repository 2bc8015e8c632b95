import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { projectRoot } from './project-root.js';

/**
 * The V8 flags the container runs with, read from the Dockerfile's `ENV NODE_OPTIONS=` line so that
 * benchmarks and tests of the deployed process use the same ones.
 */
export function containerNodeOptions(): string {
  const m = /^ENV NODE_OPTIONS=(?:"([^"]*)"|(\S.*))$/m.exec(readFileSync(resolve(projectRoot(), 'Dockerfile'), 'utf8'));
  if (!m) throw new Error('no ENV NODE_OPTIONS line found in the Dockerfile');
  return (m[1] ?? m[2]!).trim();
}

/** The arguments the image passes to its ENTRYPOINT (`node dist/src/cli.js`): the Dockerfile's CMD. */
export function containerCommand(): string[] {
  const m = /^CMD (\[.*\])$/m.exec(readFileSync(resolve(projectRoot(), 'Dockerfile'), 'utf8'));
  if (!m) throw new Error('no exec-form CMD line found in the Dockerfile');
  return JSON.parse(m[1]!) as string[];
}
