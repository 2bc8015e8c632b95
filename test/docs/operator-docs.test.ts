/**
 * The operator's pages (metrics, troubleshooting, layout, configuration, runbooks) against the code
 * they describe: the real metrics registry and its exposition, the real service's answers and spool
 * directory, and, where a set of reasons has no registry of its own, the reasons the code names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configKeys } from '../../src/config/load.js';
import { createMetrics } from '../../src/metrics/index.js';
import { SCHEMA_VERSION } from '../../src/schema/tables.js';
import { startService } from '../helpers/service.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const read = (page: string) => readFileSync(join(ROOT, page), 'utf8');
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
];
const srcFiles = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
const SOURCE = srcFiles('src').map(read).join('\n');
/** Every quoted string in the source: a documented label value must be one of them. */
const LITERALS = new Set([...SOURCE.matchAll(/'([^'\\\n]+)'/g)].map((m) => m[1]!));
const backticked = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
/** A `## heading` section of a page, up to the next one of the same level. */
const section = (text: string, heading: string) => {
  const start = text.indexOf(`\n## ${heading}\n`);
  expect(start, `section "${heading}"`).toBeGreaterThanOrEqual(0);
  const rest = text.slice(start + heading.length + 5);
  const end = rest.search(/\n## /);
  return end < 0 ? rest : rest.slice(0, end);
};

interface MetricRow {
  type: string;
  labels: string[];
  values: Map<string, string[]>;
}

/** The metric tables of docs/metrics.md: name, type, `label (`value`, ...), label` and meaning. */
function documentedMetrics(): Map<string, MetricRow> {
  const rows = new Map<string, MetricRow>();
  for (const m of read('docs/metrics.md').matchAll(/^\| `(hubble_adx_[a-z_]+)` \| (\w+) \|([^|]*)\| .* \|$/gm)) {
    const cell = m[3]!;
    const labels = cell
      .replace(/\([^)]*\)/g, '')
      .split(',')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    const values = new Map([...cell.matchAll(/(\w+) \(([^)]*)\)/g)].map((v) => [v[1]!, backticked(v[2]!)]));
    rows.set(m[1]!, { type: m[2]!, labels, values });
  }
  return rows;
}

describe('docs/metrics.md is the registry', () => {
  const documented = documentedMetrics();

  it('each metric has the type and the label names it is registered with', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const registered = await m.registry.getMetricsAsJSON();
    expect(registered.length).toBeGreaterThan(40);
    const wrong: string[] = [];
    for (const r of registered) {
      const row = documented.get(r.name);
      if (!row) {
        wrong.push(`${r.name}: not documented`);
        continue;
      }
      const labelNames = [...((m.registry.getSingleMetric(r.name) as unknown as { labelNames?: string[] }).labelNames ?? [])].sort();
      if (row.type !== String(r.type)) wrong.push(`${r.name}: documented as ${row.type}, registered as ${r.type}`);
      if (JSON.stringify([...row.labels].sort()) !== JSON.stringify(labelNames))
        wrong.push(`${r.name}: labels documented [${row.labels.join(', ')}], registered [${labelNames.join(', ')}]`);
    }
    expect(wrong).toEqual([]);
  });

  it('every label value exported from the start is documented, in its row or (table) in the page', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const text = await m.registry.metrics();
    const page = backticked(read('docs/metrics.md'));
    const missing: string[] = [];
    let series = 0;
    for (const s of text.matchAll(/^(hubble_adx_[a-z_]+)\{([^}]*)\} /gm)) {
      series++;
      const row = documented.get(s[1]!);
      for (const [, label, value] of s[2]!.matchAll(/(\w+)="([^"]*)"/g)) {
        if (label === 'le') continue;
        const listed = row?.values.get(label!);
        if (listed ? !listed.includes(value!) : !page.includes(value!)) missing.push(`${s[1]}{${label}="${value}"}`);
      }
    }
    expect(series).toBeGreaterThan(50);
    expect(missing).toEqual([]);
  });

  it('every label value the page lists is one the code names (none that no longer exists)', () => {
    const unknown: string[] = [];
    let listed = 0;
    for (const [name, row] of documented) {
      for (const [label, values] of row.values) {
        for (const v of values) {
          listed++;
          if (!LITERALS.has(v)) unknown.push(`${name}{${label}="${v}"}`);
        }
      }
    }
    expect(listed).toBeGreaterThan(60);
    expect(unknown).toEqual([]);
  });

  it('every dead-letter reason the code sets is in the Dead-letter reasons table', () => {
    const files = [
      'src/receive/decode-json.ts',
      'src/receive/decode-msgpack.ts',
      ...srcFiles('src/extract'),
      'src/process/processor.ts',
      ...srcFiles('src/normalize'),
    ];
    const text = files.map(read).join('\n');
    const reasons = new Set<string>();
    for (const m of text.matchAll(/\b(?:reason|dead)(?::| =) ('[a-z_]+'(?: \| '[a-z_]+')*)/g))
      for (const r of m[1]!.matchAll(/'([a-z_]+)'/g)) reasons.add(r[1]!);
    for (const m of text.matchAll(/\breason = [^;\n]*: '([a-z_]+)'/g)) reasons.add(m[1]!);
    expect(reasons.size).toBeGreaterThan(15);
    const table = backticked(section(read('docs/metrics.md'), 'Dead-letter reasons'));
    expect([...reasons].filter((r) => !table.includes(r))).toEqual([]);
  });
});

describe('the docs name only metrics that exist', () => {
  it('every hubble_adx_ metric any page (runbooks included) names is exported', async () => {
    const m = createMetrics();
    const json = await m.registry.getMetricsAsJSON();
    const names = new Set(
      json.flatMap((x) => (String(x.type) === 'histogram' ? [x.name, `${x.name}_bucket`, `${x.name}_sum`, `${x.name}_count`] : [x.name])),
    );
    const unknown: string[] = [];
    let named = 0;
    for (const page of PAGES) {
      // A name followed by `*` is a family (hubble_adx_process_*): its prefix must start some name.
      for (const n of read(page).matchAll(/\bhubble_adx_[a-z][a-z_]*[a-z](_\*)?/g)) {
        named++;
        const ok = n[1] ? [...names].some((x) => x.startsWith(n[0].slice(0, -1))) : names.has(n[0]);
        if (!ok) unknown.push(`${page}: ${n[0]}`);
      }
    }
    expect(named).toBeGreaterThan(60);
    expect(unknown).toEqual([]);
  });
});

describe('docs/troubleshooting.md answers every answer the service gives', () => {
  const page = read('docs/troubleshooting.md');
  const words = new Set(backticked(page));

  it('every not-ready and 503 reason, every 4xx reason and every `error` of an answer body is explained', () => {
    const pipeline = read('src/pipeline.ts');
    const bodyOf = (fn: string) => {
      const start = pipeline.indexOf(`  ${fn}(): string | null {`);
      expect(start, fn).toBeGreaterThanOrEqual(0);
      return pipeline.slice(start, pipeline.indexOf('\n  }\n', start));
    };
    const reasons = new Set<string>();
    for (const fn of ['refuseReason', 'notReadyReason']) for (const m of bodyOf(fn).matchAll(/'([a-z_]+)'/g)) reasons.add(m[1]!);
    const receive = ['src/receive/server.ts', 'src/receive/body.ts', 'src/receive/decompress.ts'].map(read).join('\n');
    for (const m of receive.matchAll(/\b(?:reason|error): '([a-z_]+)'/g)) reasons.add(m[1]!);
    for (const m of receive.matchAll(/\bbusy\(\w+, '([a-z_]+)'\)/g)) reasons.add(m[1]!);
    for (const r of [
      'starting',
      'draining',
      'spool_lock_lost',
      'spool_full',
      'queue_full',
      'requests_in_flight',
      'spool_error',
      'unauthorized',
      'no_valid_record',
    ])
      expect(reasons).toContain(r);
    expect([...reasons].filter((r) => !words.has(r))).toEqual([]);
  });

  it('every exit code the command sets has a row of the exit-code table', () => {
    const cli = read('src/cli.ts');
    const codes = new Set([...cli.matchAll(/\b(?:process\.exit\(|process\.exitCode = |return )(\d+)\b/g)].map((m) => m[1]!));
    expect([...codes].sort()).toEqual(expect.arrayContaining(['0', '1', '2', '75']));
    const rows = new Set([...section(page, 'Exit codes').matchAll(/^\| (\d+) \|/gm)].map((m) => m[1]!));
    expect([...codes].filter((c) => !rows.has(c))).toEqual([]);
  });

  it('the fields of a 200 answer are the fields the service answers with', async () => {
    const svc = await startService();
    try {
      const line = JSON.stringify({ flow: { time: new Date().toISOString(), verdict: 'FORWARDED' }, node_name: 'n1' });
      const res = await svc.post(Buffer.from(JSON.stringify({ log: line }) + '\n'), { 'content-type': 'application/x-ndjson' });
      expect(res.status).toBe(200);
      const answered = Object.keys((await res.json()) as object).sort();
      const documented = [...section(page, 'What a 200 answers').matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]!).sort();
      expect(documented).toEqual(answered);
    } finally {
      await svc.stop();
    }
  });
});

describe('docs/layout.md is the tree', () => {
  const layout = read('docs/layout.md');

  it('names every folder of src/, every file at its top, and every file of the runtime, spool, coverage and sink folders', () => {
    const top = readdirSync(join(ROOT, 'src'), { withFileTypes: true });
    const missing: string[] = [];
    for (const e of top) {
      if (e.isDirectory() && !e.name.startsWith('types')) {
        if (!layout.includes(`src/${e.name}`)) missing.push(`src/${e.name}`);
      } else if (e.isFile() && !layout.includes(e.name)) missing.push(`src/${e.name}`);
    }
    for (const dir of ['runtime', 'spool', 'coverage', 'sink']) {
      for (const f of readdirSync(join(ROOT, 'src', dir)).filter((n) => n.endsWith('.ts') && n !== 'index.ts'))
        if (!layout.includes(f)) missing.push(`src/${dir}/${f}`);
    }
    expect(missing).toEqual([]);
  });

  it('every src/ path it names exists', () => {
    const named = [...layout.matchAll(/\bsrc\/[\w./-]*\w/g)].map((m) => m[0]);
    expect(named.length).toBeGreaterThan(10);
    const all = new Set(['src', ...readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).map((f) => `src/${f}`)]);
    expect(named.filter((p) => !all.has(p))).toEqual([]);
  });

  it('names every file the real service keeps in its spool directory', async () => {
    const svc = await startService();
    const spool = join(svc.dir, 'spool');
    const seen = new Set<string>();
    const look = () => {
      for (const f of readdirSync(spool)) seen.add(f.replace(/^segment-\d{16}-e\d+\.wal$/, 'segment-<sequence>-e<epoch>.wal').replace(/^segment-\d{16}-e\d+\.ack$/, 'segment-….ack'));
      for (const e of readdirSync(join(spool, 'epochs'))) for (const f of readdirSync(join(spool, 'epochs', e))) seen.add(`epochs/<n>/${f}`);
    };
    try {
      const line = JSON.stringify({ flow: { time: new Date().toISOString(), verdict: 'FORWARDED' }, node_name: 'n1' });
      expect((await svc.post(Buffer.from(JSON.stringify({ log: line }) + '\n'), { 'content-type': 'application/x-ndjson' })).status).toBe(
        200,
      );
      look();
      await svc.service.pipeline.flush();
      await new Promise((r) => setTimeout(r, 50));
      look();
      await svc.service.stop();
      look();
    } finally {
      await svc.stop();
    }
    expect([...seen]).toEqual(expect.arrayContaining(['spool.lock', 'epochs', 'epochs/<n>/fence.json', 'segment-<sequence>-e<epoch>.wal', 'stopped-cleanly.json']));
    expect([...seen].filter((f) => !layout.includes(f === 'epochs' ? 'epochs/<n>/' : f))).toEqual([]);
  });
});

describe('docs/configuration.md and docs/tables.md', () => {
  it('every configuration key has a row with its variable and a meaning', () => {
    const page = read('docs/configuration.md');
    const keys = configKeys();
    expect(keys.length).toBeGreaterThan(90);
    const wrong = keys.filter((k) => {
      const row = new RegExp(`^\\| \`${k.path.join('\\.')}\` \\| \`${k.env}\` \\| [^|]+ \\| (.*) \\|$`, 'm').exec(page);
      return !row || row[1]!.trim().length < 10;
    });
    expect(wrong.map((k) => k.path.join('.'))).toEqual([]);
  });

  it('the mapping names the tables page shows carry the schema version', () => {
    const shown = [...read('docs/tables.md').matchAll(/_(?:json|avro)_v(\d+)\b/g)].map((m) => Number(m[1]));
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.filter((v) => v !== SCHEMA_VERSION)).toEqual([]);
  });

  it('the runbook of HubbleAdxDeadLettersWaiting shows the redrive command as the image runs it', () => {
    const runbook = read('docs/runbooks/HubbleAdxDeadLettersWaiting.md');
    const entry = /ENTRYPOINT \["node", "([^"]+)"\]/.exec(read('Dockerfile'))![1]!;
    expect(runbook).toContain(`node ${entry} redrive`);
    expect(basename(entry)).toBe('cli.js');
  });
});
