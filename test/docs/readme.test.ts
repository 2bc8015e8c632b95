import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generatedSections, renderPage } from '../../src/docs.js';
import { parse as parseYaml } from 'yaml';
import { configSchema } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { startService } from '../helpers/service.js';

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

  // Every default, by dotted key, and by its last segment where that is unique.
  const defaults = new Map<string, number>();
  const walk = (value: unknown, path: string[]) => {
    if (typeof value === 'number') defaults.set(path.join('.'), value);
    else if (value && typeof value === 'object' && !Array.isArray(value)) for (const [k, v] of Object.entries(value)) walk(v, [...path, k]);
  };
  walk(configSchema.parse({}), []);
  const lastSegments = new Map<string, string[]>();
  for (const key of defaults.keys()) lastSegments.set(key.split('.').pop()!, [...(lastSegments.get(key.split('.').pop()!) ?? []), key]);
  const resolve = (name: string) => (defaults.has(name) ? name : lastSegments.get(name)?.length === 1 ? lastSegments.get(name)![0]! : null);

  const BYTES: Record<string, number> = { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
  const SECONDS: Record<string, number> = { ms: 0.001, s: 1, min: 60, h: 3600 };
  /** A figure written next to a key, as the docs write them: `key` (8 MiB), `key`, 1 s, `key` 10,000. */
  function documentedFigures(text: string): { key: string; written: string; value: number; unit: string | undefined }[] {
    const out = [];
    for (const m of text.matchAll(/`([a-zA-Z]+(?:\.[a-zA-Z]+)*)`,? \(?([0-9][0-9.,]*)(?: ?(KiB|MiB|GiB|KB|MB|GB|ms|s|min|h)\b)?/g)) {
      const key = resolve(m[1]!);
      if (!key) continue;
      out.push({ key, written: m[0], value: Number(m[2]!.replace(/,/g, '')), unit: m[3] });
    }
    return out;
  }

  it('figures the docs give for configuration keys are the defaults in the code', () => {
    const checked: string[] = [];
    const wrong: string[] = [];
    for (const page of PAGES) {
      for (const f of documentedFigures(read(page))) {
        const def = defaults.get(f.key)!;
        let matches: boolean;
        if (/Bytes$/.test(f.key)) {
          // A byte figure needs its unit; "MB" is read as MiB or as 10^6, whichever is nearer.
          if (!f.unit || !(f.unit in BYTES)) continue;
          const binary = f.value * BYTES[f.unit]!;
          const decimal = f.value * 1000 ** (Object.keys(BYTES).indexOf(f.unit) % 3 + 1);
          matches = [binary, decimal].some((v) => Math.abs(v - def) / def < 0.03);
        } else if (/(Ms|Seconds)$/.test(f.key)) {
          if (!f.unit || !(f.unit in SECONDS)) continue;
          matches = f.value * SECONDS[f.unit]! === (f.key.endsWith('Ms') ? def / 1000 : def);
        } else {
          // A count; HTTP statuses in parentheses after a key ("(413)") are not figures of it.
          if (f.unit || /\(\d{3}$/.test(f.written)) continue;
          matches = f.value === def;
        }
        checked.push(`${page}: ${f.written}`);
        if (!matches) wrong.push(`${page}: ${f.written} (the default of ${f.key} is ${def})`);
      }
    }
    expect(checked.length).toBeGreaterThan(10);
    expect(wrong).toEqual([]);
  });

  it('the commented example configuration (config/hubble-adx.yaml) sets every key to its default', () => {
    const example = parseYaml(readFileSync(join(ROOT, 'config/hubble-adx.yaml'), 'utf8')) as Record<string, unknown>;
    const differs: string[] = [];
    const all = configSchema.parse({}) as Record<string, unknown>;
    const compare = (value: unknown, path: string[]) => {
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        for (const [k, v] of Object.entries(value)) compare(v, [...path, k]);
        return;
      }
      let d: unknown = all;
      for (const seg of path) d = (d as Record<string, unknown>)[seg];
      if (JSON.stringify(d) !== JSON.stringify(value)) differs.push(`${path.join('.')}: ${JSON.stringify(value)}, default ${JSON.stringify(d)}`);
    };
    compare(example, []);
    expect(differs).toEqual([]);
  });

  it('the manifests\' configuration sets numeric keys only to their defaults, but for the ports and the spool it chooses', () => {
    const manifest = parseYaml(readFileSync(join(ROOT, 'deploy/kubernetes/base/hubble-adx.yaml'), 'utf8')) as Record<string, unknown>;
    const chosen = new Set(['server.metricsPort']);
    const differs: string[] = [];
    const visit = (value: unknown, path: string[]) => {
      if (value && typeof value === 'object' && !Array.isArray(value)) for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
      else if (typeof value === 'number' && !chosen.has(path.join('.')) && defaults.get(path.join('.')) !== value) differs.push(`${path.join('.')}: ${value}, default ${defaults.get(path.join('.'))}`);
    };
    visit(manifest, []);
    expect(differs).toEqual([]);
  });

  it('the manifests\' sizing comment gives the CPU per flow and RSS of the docs\' Sizing', () => {
    const sizing = read('docs/deployment.md').split('## Sizing')[1]!;
    const perFlow = /CPU request = peak flows\/s per node × (\d+) µs/.exec(sizing)![1];
    for (const overlay of ['daemonset', 'sidecar']) {
      const manifest = readFileSync(join(ROOT, 'deploy/kubernetes/overlays', overlay, 'daemonset.yaml'), 'utf8');
      expect(manifest, overlay).toContain(`CPU = peak flows/s x ${perFlow} us`);
    }
  });

  it('the quickstart: the README\'s request gets the answer the README shows', async () => {
    const readme = read('README.md');
    const body = /<<'EOF'\n([\s\S]*?)\nEOF/.exec(readme)![1]!;
    const answer = /It answers `(\{[^`]*\})`/.exec(readme)![1]!;
    const svc = await startService();
    try {
      const res = await svc.post(Buffer.from(body + '\n'), { 'content-type': 'application/x-ndjson' });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(answer);
    } finally {
      await svc.stop();
    }
  });
});
