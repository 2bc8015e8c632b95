import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../support/project-root.js';

const ROOT = projectRoot();
const isCheckout = existsSync(join(ROOT, '.git'));

function git(args: string[], cwd: string, okStatus = [0]): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (!okStatus.includes(r.status ?? -1)) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// The test files that read fixtures, found by what they import, so a new one is covered too.
function fixtureReadingTests(): string[] {
  return git(['ls-files', 'test'], ROOT)
    .split('\n')
    .filter((f) => f.endsWith('.test.ts') && !f.startsWith('test/project/'))
    .filter((f) => readFileSync(join(ROOT, f), 'utf8').includes('support/fixtures.js'));
}

describe.skipIf(!isCheckout)('the project stands on its own', () => {
  it('no committed file refers to a directory beside the project', () => {
    const outside = ['..', 'shared'].join('/');
    const hits = git(['grep', '-l', '-F', outside, '--', '.', ':!package-lock.json'], ROOT, [0, 1]).split('\n').filter(Boolean);
    expect(hits).toEqual([]);
  });

  it('a clone of the committed tree with nothing beside it passes every test that reads fixtures', () => {
    const tests = fixtureReadingTests();
    expect(tests.length).toBeGreaterThanOrEqual(6);
    // <tmp>/alone/project, with no shared/ (nor anything else) beside it.
    const parent = join(mkdtempSync(join(tmpdir(), 'hubble-adx-clone-')), 'alone');
    mkdirSync(parent);
    const clone = join(parent, 'project');
    git(['clone', '--quiet', '--no-hardlinks', ROOT, clone], parent);
    // The installed dependencies are the only thing taken from the checkout: `npm ci` would fetch the same.
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'), 'dir');
    const build = spawnSync(process.execPath, [join(clone, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: clone, encoding: 'utf8' });
    expect(build.stdout + build.stderr).toBe('');
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
    for (const k of Object.keys(env)) if (k.startsWith('VITEST') || k === 'NODE_OPTIONS') delete env[k];
    const run = spawnSync(process.execPath, [join(clone, 'node_modules/vitest/vitest.mjs'), 'run', ...tests], { cwd: clone, env, encoding: 'utf8', timeout: 240_000 });
    const out = run.stdout + run.stderr;
    expect(out, out.slice(-4000)).toMatch(new RegExp(`Test Files\\s+\\S*${tests.length} passed`));
    expect(run.status, out.slice(-4000)).toBe(0);
  }, 300_000);
});
