import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { FLUENT_BIT_DIR } from '../support/fixtures.js';
import { kqlErrors } from '../helpers/kusto-language.js';
import { startService, type Running } from '../helpers/service.js';

const require = createRequire(import.meta.url);
const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const K8S = join(ROOT, 'deploy/kubernetes');

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; spec?: Record<string, unknown>; data?: Record<string, string> };

function kustomize(dir: string): Doc[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.stderr || r.error}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Doc);
}

/** The Kubernetes (and Prometheus Operator) model classes that validate each kind against its JSON schema. */
function modelFor(doc: Doc): { validate(): void } {
  const path: Record<string, [string, string]> = {
    'v1/Namespace': ['kubernetes-models/v1', 'Namespace'],
    'v1/ServiceAccount': ['kubernetes-models/v1', 'ServiceAccount'],
    'v1/ConfigMap': ['kubernetes-models/v1', 'ConfigMap'],
    'v1/Service': ['kubernetes-models/v1', 'Service'],
    'apps/v1/DaemonSet': ['kubernetes-models/apps/v1', 'DaemonSet'],
    'policy/v1/PodDisruptionBudget': ['kubernetes-models/policy/v1', 'PodDisruptionBudget'],
    'scheduling.k8s.io/v1/PriorityClass': ['kubernetes-models/scheduling.k8s.io/v1', 'PriorityClass'],
    'monitoring.coreos.com/v1/PodMonitor': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor', 'PodMonitor'],
    'monitoring.coreos.com/v1/PrometheusRule': ['@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule', 'PrometheusRule'],
  };
  const entry = path[`${doc.apiVersion}/${doc.kind}`];
  if (!entry) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  const mod = require(entry[0]) as Record<string, new (d: unknown) => { validate(): void }>;
  return new mod[entry[1]]!(doc);
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  readinessProbe?: { httpGet: { path: string } };
  livenessProbe?: { httpGet: { path: string } };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

interface PodSpec {
  containers: Container[];
  tolerations?: { operator: string }[];
  priorityClassName?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean };
  serviceAccountName?: string;
}

const podSpec = (d: Doc) => ((d.spec as { template: { spec: PodSpec } }).template.spec);

describe('Kubernetes manifests', () => {
  const overlays = ['daemonset', 'sidecar'] as const;
  const rendered = Object.fromEntries(overlays.map((o) => [o, kustomize(join(K8S, 'overlays', o))])) as Record<(typeof overlays)[number], Doc[]>;

  for (const overlay of overlays) {
    it(`${overlay}: renders offline and every object passes its Kubernetes schema`, () => {
      const docs = rendered[overlay];
      expect(docs.map((d) => d.kind).sort()).toEqual(
        overlay === 'daemonset'
          ? ['ConfigMap', 'DaemonSet', 'Namespace', 'PodDisruptionBudget', 'PriorityClass', 'Service', 'ServiceAccount']
          : ['ConfigMap', 'ConfigMap', 'DaemonSet', 'Namespace', 'PodDisruptionBudget', 'PriorityClass', 'ServiceAccount'],
      );
      for (const d of docs) expect(() => modelFor(d).validate(), `${d.kind} ${d.metadata.name}`).not.toThrow();
    });

    it(`${overlay}: hubble-adx runs on every node, non-root, read-only, probed, drained within its grace period`, () => {
      const ds = rendered[overlay].find((d) => d.kind === 'DaemonSet')!;
      const spec = podSpec(ds);
      const c = spec.containers.find((x) => x.name === 'hubble-adx')!;
      expect(spec.tolerations).toContainEqual({ operator: 'Exists' });
      expect(spec.priorityClassName).toBe('hubble-adx');
      expect(spec.securityContext?.runAsNonRoot).toBe(true);
      expect(spec.serviceAccountName).toBe('hubble-adx');
      expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(c.readinessProbe?.httpGet.path).toBe('/readyz');
      expect(c.livenessProbe?.httpGet.path).toBe('/healthz');
      expect(c.resources?.requests?.cpu).toBeDefined();
      expect(c.resources?.limits?.memory).toBeDefined();
      // The configuration in the ConfigMap is valid, and its drain fits in the pod's grace period.
      const cm = rendered[overlay].find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'hubble-adx-config')!;
      const file = join(mkdtempSync(join(tmpdir(), 'hubble-adx-cm-')), 'hubble-adx.yaml');
      writeFileSync(file, cm.data!['hubble-adx.yaml']!);
      const env = Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
      const cfg = loadConfig({ file, env });
      expect(cfg.sink.type).toBe('kusto');
      expect(cfg.spool.enabled).toBe(true);
      expect(cfg.shutdown.graceMs).toBeLessThan((spec.terminationGracePeriodSeconds ?? 30) * 1000);
      expect(c.args).toEqual(['serve', '--config', '/etc/hubble-adx/hubble-adx.yaml']);
    });
  }

  it('both overlays run the same hubble-adx container', () => {
    const [a, b] = overlays.map((o) => podSpec(rendered[o].find((d) => d.kind === 'DaemonSet')!).containers.find((c) => c.name === 'hubble-adx'));
    expect(b).toEqual(a);
  });

  it('the sidecar overlay carries deploy/fluent-bit/fluent-bit.yaml, posting to the pod loopback', () => {
    const cm = rendered.sidecar.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'hubble-adx-fluent-bit')!;
    const shipped = readFileSync(join(ROOT, 'deploy/fluent-bit/fluent-bit.yaml'), 'utf8');
    expect(cm.data!['fluent-bit.yaml']).toBe(shipped.replace('host: hubble-adx.hubble-adx.svc.cluster.local', 'host: 127.0.0.1'));
  });
});

describe('container image', () => {
  it('builds from src alone (what the Dockerfile copies) and runs as a non-root user on Node 20', () => {
    const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(docker).toMatch(/^FROM node:20-bookworm-slim AS build$/m);
    expect(docker).toMatch(/^USER node$/m);
    expect(docker).toMatch(/^HEALTHCHECK /m);
    expect(docker).toContain('npm prune --omit=dev');
    const tsc = require.resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--noEmit'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('Prometheus rules and dashboards', () => {
  let svc: Running;
  let exported: Set<string>;
  const monitoring = kustomize(join(K8S, 'monitoring'));
  const rule = monitoring.find((d) => d.kind === 'PrometheusRule')!;
  const groups = (rule.spec as { groups: { rules: { alert: string; expr: string; annotations: { runbook_url: string } }[] }[] }).groups;
  beforeAll(async () => {
    svc = await startService();
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    exported = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap((m) => (m[2] === 'histogram' ? [m[1]!, `${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`] : [m[1]!])));
  });
  afterAll(() => svc.stop());

  const metricsIn = (expr: string) => [...expr.matchAll(/\bhubble_adx_[a-z_]+/g)].map((m) => m[0]);

  it('the PodMonitor and PrometheusRule pass their schemas', () => {
    for (const d of monitoring) expect(() => modelFor(d).validate(), d.kind).not.toThrow();
  });

  it('promtool checks the rules', () => {
    const promtool = spawnSync('promtool', ['--version']);
    if (promtool.error) {
      // .ci/run installs Debian's prometheus package; only a bare developer machine lacks it.
      expect(process.env.CI, 'promtool (Debian package prometheus) is missing on CI').toBeUndefined();
      return;
    }
    const file = join(mkdtempSync(join(tmpdir(), 'hubble-adx-rules-')), 'rules.yaml');
    writeFileSync(file, stringify({ groups: groups.map((g) => ({ name: 'hubble-adx', ...g })) }));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: 9 rules found/);
    expect(r.status).toBe(0);
  });

  it('every alert names only metrics the running service exports, and has a runbook entry', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    for (const r of groups.flatMap((g) => g.rules)) {
      const names = metricsIn(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const n of names) expect(exported.has(n), `${r.alert}: ${n}`).toBe(true);
      const anchor = r.annotations.runbook_url.split('#')[1]!;
      expect(readme.toLowerCase()).toContain(`### runbook: ${r.alert.toLowerCase()}`);
      expect(anchor).toBe(`runbook-${r.alert.toLowerCase()}`);
    }
  });

  it('the pipeline dashboard names only exported metrics', () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hubble-adx-pipeline.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const names = dash.panels.flatMap((p) => p.targets.flatMap((t) => metricsIn(t.expr)));
    expect(names.length).toBeGreaterThan(15);
    for (const n of names) expect(exported.has(n), n).toBe(true);
  });

  it('the flows dashboard queries pass the Kusto language service against the tables', () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hubble-adx-flows.json'), 'utf8')) as { panels: { title: string; targets: { query: string }[] }[] };
    for (const p of dash.panels) {
      for (const t of p.targets) {
        // The Grafana ADX data source's macros, as it expands them.
        const kql = t.query.replace(/\$__timeFilter\((\w+)\)/g, '$1 between (ago(1d) .. now())').replace(/\$__timeInterval/g, '1h');
        expect(kqlErrors(kql), p.title).toEqual([]);
      }
    }
  });
});

describe('Fluent Bit configuration', () => {
  /** Fluent Bit's classic format: [SECTION] headers, then `Key value` lines; # comments. */
  function readClassic(text: string): { section: string; props: Record<string, string> }[] {
    const out: { section: string; props: Record<string, string> }[] = [];
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('[')) {
        out.push({ section: line.slice(1, -1).toUpperCase(), props: {} });
        continue;
      }
      const m = /^(\S+)\s+(.*)$/.exec(line);
      if (!m || out.length === 0) throw new Error(`not a Fluent Bit line: ${line}`);
      out[out.length - 1]!.props[m[1]!.toLowerCase()] = m[2]!.trim();
    }
    return out;
  }

  // The keys each plugin reads (Fluent Bit 4.2 documentation), and the common ones.
  const KNOWN: Record<string, string[]> = {
    SERVICE: ['flush', 'storage.path', 'storage.sync', 'storage.backlog.mem_limit', 'log_level', 'http_server'],
    tail: ['name', 'tag', 'path', 'multiline.parser', 'db', 'mem_buf_limit', 'storage.type', 'refresh_interval', 'skip_long_lines'],
    grep: ['name', 'match', 'regex', 'exclude', 'logical_op'],
    http: ['name', 'match', 'host', 'port', 'uri', 'format', 'compress', 'retry_limit', 'storage.total_limit_size', 'header', 'http_user', 'http_passwd', 'tls', 'json_date_key', 'json_date_format', 'workers'],
  };

  const classic = readClassic(readFileSync(join(ROOT, 'deploy/fluent-bit/fluent-bit.conf'), 'utf8'));
  const yaml = parseYaml(readFileSync(join(ROOT, 'deploy/fluent-bit/fluent-bit.yaml'), 'utf8')) as {
    service: Record<string, unknown>;
    pipeline: Record<'inputs' | 'filters' | 'outputs', Record<string, unknown>[]>;
  };

  it('uses only keys the plugins read', () => {
    for (const s of classic) {
      const plugin = s.section === 'SERVICE' ? 'SERVICE' : s.props.name!;
      for (const k of Object.keys(s.props)) expect(KNOWN[plugin], `${s.section} ${plugin}`).toContain(k);
    }
  });

  it('the classic and YAML files describe the same pipeline', () => {
    const fromYaml = [
      { section: 'SERVICE', props: yaml.service },
      ...yaml.pipeline.inputs.map((p) => ({ section: 'INPUT', props: p })),
      ...yaml.pipeline.filters.map((p) => ({ section: 'FILTER', props: p })),
      ...yaml.pipeline.outputs.map((p) => ({ section: 'OUTPUT', props: p })),
    ].map((s) => ({ section: s.section, props: Object.fromEntries(Object.entries(s.props).map(([k, v]) => [k.toLowerCase(), String(v)])) }));
    expect(fromYaml).toEqual(classic);
  });

  it('sends msgpack with gzip, retries without limit and buffers on disk', () => {
    const out = classic.find((s) => s.section === 'OUTPUT')!.props;
    expect(out).toMatchObject({ name: 'http', format: 'msgpack', compress: 'gzip', retry_limit: 'no_limits', port: '9880' });
    const input = classic.find((s) => s.section === 'INPUT')!.props;
    expect(input).toMatchObject({ name: 'tail', 'multiline.parser': 'cri', 'storage.type': 'filesystem' });
    expect(input.path).toMatch(/cilium-\*_kube-system_cilium-agent-\*\.log$/);
  });

  it('the grep filter keeps every exporter record of a real cilium-agent log and drops its agent lines', () => {
    const regex = classic.find((s) => s.section === 'FILTER')!.props.regex!;
    const [key, pattern] = [regex.slice(0, regex.indexOf(' ')), regex.slice(regex.indexOf(' ') + 1)];
    expect(key).toBe('log');
    // Onigmo and JavaScript read this pattern alike (\" is a plain quote in both).
    const re = new RegExp(pattern);
    const lines = readFileSync(join(FLUENT_BIT_DIR, 'input-cilium-agent-cri.log'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').slice(3).join(' '));
    const wanted = lines.filter((l) => /^\{"(flow|lost_events|agent_event)"/.test(l));
    expect(wanted.length).toBeGreaterThanOrEqual(12);
    for (const l of wanted) expect(re.test(l), l.slice(0, 60)).toBe(true);
    expect(lines.filter((l) => l.startsWith('level=') || l.startsWith('time=')).some((l) => re.test(l))).toBe(false);
  });

  it('the Cilium Helm values export every flow to stdout', () => {
    const values = parseYaml(readFileSync(join(ROOT, 'deploy/fluent-bit/cilium-values.yaml'), 'utf8')) as { hubble: { export: { static: Record<string, unknown> } } };
    expect(values.hubble.export.static).toMatchObject({ enabled: true, filePath: 'stdout', fieldMask: [] });
  });
});
