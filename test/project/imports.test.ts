import { parseCircular, parseDependencyTree } from 'dpdm';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/project-root.js';

describe('the modules of src/', () => {
  it('import one another without a cycle, not even through types: data flows one way through the stages', async () => {
    const tree = await parseDependencyTree(['src/cli.ts', 'src/**/*.ts'], { context: projectRoot(), transform: false, skipDynamicImports: false });
    const cycles = parseCircular(tree).map((c) => c.join(' -> '));
    expect(cycles).toEqual([]);
    // The check sees type-only imports: the tree holds the schema module, imported only for types by many.
    expect(Object.keys(tree).some((f) => f.endsWith('src/schema/tables.ts'))).toBe(true);
  });
});
