import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generatedSections, renderPage } from '../../src/docs.js';
import { createMetrics } from '../../src/metrics/index.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const read = (page: string) => readFileSync(join(ROOT, page), 'utf8');
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

describe('the docs stay true', () => {
  for (const page of Object.keys(generatedSections())) {
    it(`${page}: its generated sections are what the definitions generate (run \`npm run docs\`)`, () => {
      const text = read(page);
      expect(renderPage(page, text)).toBe(text);
    });
  }

  it('the metrics table lists exactly the metrics hubble-adx registers', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const registered = (await m.registry.getMetricsAsJSON()).map((x) => x.name).sort();
    const documented = [...read('docs/metrics.md').matchAll(/^\| `(hubble_adx_[a-z_]+)` \|/gm)].map((x) => x[1]!).sort();
    expect(documented).toEqual(registered);
  });

  it('every link between pages and to project files points at something that exists', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      for (const m of read(page).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(ROOT, dirname(page), target))) broken.push(`${page}: ${target}`);
      }
    }
    expect(PAGES.length).toBeGreaterThan(10);
    expect(broken).toEqual([]);
  });
});
