import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderReadme } from '../../src/docs.js';
import { createMetrics } from '../../src/metrics/index.js';

const README = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../README.md');

describe('README stays true', () => {
  const text = readFileSync(README, 'utf8');

  it('its schema and configuration sections are what the definitions generate (run `npm run docs`)', () => {
    expect(renderReadme(text)).toBe(text);
  });

  it('its metrics table lists exactly the metrics hubble-adx registers', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const registered = (await m.registry.getMetricsAsJSON()).map((x) => x.name).sort();
    const documented = [...text.matchAll(/^\| `(hubble_adx_[a-z_]+)` \|/gm)].map((x) => x[1]!).sort();
    expect(documented).toEqual(registered);
  });
});
