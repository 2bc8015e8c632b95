import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, matchesGlob, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { unauthenticatedExposure } from '../../src/receive/auth.js';
import { gzipSync } from 'node:zlib';
import { FLUENT_BIT_DIR, hubbleFixtureLines } from '../support/fixtures.js';
import { msgpackBody } from '../support/fluent-bit-bodies.js';
import { parseHubbleLine } from '../../src/extract/hubble-line.js';
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
    'networking.k8s.io/v1/NetworkPolicy': ['kubernetes-models/networking.k8s.io/v1', 'NetworkPolicy'],
  };
  // AKS managed Prometheus's PodMonitor is the Prometheus Operator's under another API group.
  if (doc.apiVersion === 'azmonitoring.coreos.com/v1' && doc.kind === 'PodMonitor') return modelFor({ ...doc, apiVersion: 'monitoring.coreos.com/v1' });
  // No published schema for Cilium's CRDs: the policy tests below read its selectors instead.
  if (doc.apiVersion === 'cilium.io/v2' && doc.kind === 'CiliumNetworkPolicy') return { validate: () => expect(doc.spec).toHaveProperty('endpointSelector') };
  const entry = path[`${doc.apiVersion}/${doc.kind}`];
  if (!entry) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  const mod = require(entry[0]) as Record<string, new (d: unknown) => { validate(): void }>;
  return new mod[entry[1]]!(doc);
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key?: string; optional?: boolean } } }[];
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
          ? ['CiliumNetworkPolicy', 'ConfigMap', 'DaemonSet', 'Namespace', 'PriorityClass', 'Service', 'ServiceAccount']
          : ['ConfigMap', 'ConfigMap', 'DaemonSet', 'Namespace', 'PriorityClass', 'ServiceAccount'],
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
      // The ConfigMap's name carries a hash of its content, so that an edit rolls the pods.
      const cm = rendered[overlay].find((d) => d.kind === 'ConfigMap' && /^hubble-adx-config-[a-z0-9]{10}$/.test(d.metadata.name))!;
      expect(JSON.stringify(spec)).toContain(`"name":"${cm.metadata.name}"`);
      const file = join(mkdtempSync(join(tmpdir(), 'hubble-adx-cm-')), 'hubble-adx.yaml');
      writeFileSync(file, cm.data!['hubble-adx.yaml']!);
      const env = Object.fromEntries((c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
      const cfg = loadConfig({ file, env });
      expect(cfg.sink.type).toBe('kusto');
      expect(cfg.spool.enabled).toBe(true);
      expect(cfg.shutdown.graceMs).toBeLessThan((spec.terminationGracePeriodSeconds ?? 30) * 1000);
      expect(unauthenticatedExposure(cfg.server.host, cfg.auth)).toBeNull();
      expect(c.args).toEqual(['serve', '--config', '/etc/hubble-adx/hubble-adx.yaml']);
    });
  }

  it('one source for the token Secret: the same two files make it in hubble-adx\'s namespace and in Fluent Bit\'s', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-auth-'));
    cpSync(join(K8S, 'auth/kustomization.yaml'), join(dir, 'kustomization.yaml'));
    const token = 'f'.repeat(64);
    writeFileSync(join(dir, 'tokens.txt'), `${'e'.repeat(64)}\n${token}\n`);
    writeFileSync(join(dir, 'token.env'), `token=${token}\n`);
    const secrets = kustomize(dir) as (Doc & { metadata: { namespace: string } })[];
    expect(secrets.map((s) => `${s.kind} ${s.metadata.namespace}/${s.metadata.name}`)).toEqual(['Secret hubble-adx/hubble-adx-auth', 'Secret logging/hubble-adx-auth']);
    expect(secrets[1]!.data).toEqual(secrets[0]!.data);
    // What Fluent Bit puts in its header is the token alone, without a newline.
    expect(Buffer.from(secrets[0]!.data!.token!, 'base64').toString()).toBe(token);
    expect(Buffer.from(secrets[0]!.data!.tokens!, 'base64').toString().split('\n')).toContain(token);
  });

  it('both overlays run the same hubble-adx container, the sidecar with ingest on the pod loopback', () => {
    const [a, b] = overlays.map((o) => podSpec(rendered[o].find((d) => d.kind === 'DaemonSet')!).containers.find((c) => c.name === 'hubble-adx')!);
    expect(b!.env).toContainEqual({ name: 'HUBBLE_ADX_SERVER__HOST', value: '127.0.0.1' });
    expect({ ...b, env: b!.env!.filter((e) => e.name !== 'HUBBLE_ADX_SERVER__HOST') }).toEqual(a);
  });

  for (const overlay of overlays) {
    it(`${overlay}: scheduled like Cilium's agent and the fluent-bit chart, sized from the bench, token required, no API token`, () => {
      const ds = rendered[overlay].find((d) => d.kind === 'DaemonSet')! as Doc & { spec: { updateStrategy: { rollingUpdate: { maxUnavailable: unknown } }; template: { metadata: { annotations?: Record<string, string> } } } };
      const spec = podSpec(ds) as PodSpec & { nodeSelector?: Record<string, string>; affinity?: unknown; automountServiceAccountToken?: boolean };
      expect(spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
      expect(JSON.stringify(spec.affinity)).toContain('virtual-kubelet');
      expect(ds.spec.updateStrategy.rollingUpdate.maxUnavailable).toMatch(/^\d+%$/);
      expect(spec.automountServiceAccountToken).toBe(false);
      const c = spec.containers.find((x) => x.name === 'hubble-adx')! as Container & { env: NonNullable<Container['env']> };
      // The tokens are a mounted file (read again on a rotation), from a Secret that is required.
      const volumes = (spec as PodSpec & { volumes: { name: string; secret?: { secretName: string; optional?: boolean; items?: { key: string; path: string }[] } }[] }).volumes;
      const auth = volumes.find((v) => v.secret?.secretName === 'hubble-adx-auth')!;
      expect(auth.secret).toEqual({ secretName: 'hubble-adx-auth', items: [{ key: 'tokens', path: 'tokens' }] });
      const mount = (c as Container & { volumeMounts: { name: string; mountPath: string; subPath?: string }[] }).volumeMounts.find((m) => m.name === auth.name)!;
      expect(mount.subPath).toBeUndefined();
      const cm = rendered[overlay].find((d) => d.kind === 'ConfigMap' && d.metadata.name.startsWith('hubble-adx-config-'))!;
      expect(parseYaml(cm.data!['hubble-adx.yaml']!).auth.tokenFile).toBe(`${mount.mountPath}/tokens`);
      expect(c.env.some((e) => e.name.startsWith('HUBBLE_ADX_AUTH__'))).toBe(false);
      // 60 us per flow as deployed x 2,500 flows/s of burst; the peak RSS under fuzzing (206 MiB) fits.
      expect(c.resources?.requests).toEqual({ cpu: '150m', memory: '256Mi' });
      expect(c.resources?.limits).toEqual({ memory: '384Mi' });
      const pc = rendered[overlay].find((d) => d.kind === 'PriorityClass')! as Doc & { value: number; preemptionPolicy: string };
      expect(pc.preemptionPolicy).toBe('Never');
      expect(pc.value).toBeLessThan(1_000_000_000);
      const sa = rendered[overlay].find((d) => d.kind === 'ServiceAccount')! as Doc & { automountServiceAccountToken?: boolean };
      expect(sa.automountServiceAccountToken).toBe(false);
      const ns = rendered[overlay].find((d) => d.kind === 'Namespace')! as Doc & { metadata: { labels: Record<string, string> } };
      expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBeDefined();
      if (overlay === 'sidecar') {
        expect(ds.spec.template.metadata.annotations?.['azure.workload.identity/skip-containers']).toBe('fluent-bit');
        const fb = spec.containers.find((x) => x.name === 'fluent-bit')! as Container & { env: NonNullable<Container['env']> };
        expect(fb.env.find((e) => e.name === 'HUBBLE_ADX_TOKEN')?.valueFrom?.secretKeyRef?.name).toBe('hubble-adx-auth');
        expect(fb.livenessProbe?.httpGet.path).toBe('/api/v1/health');
      }
    });
  }

  describe('the closed receiver', () => {
    type Selector = { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
    const matches = (sel: Selector, labels: Record<string, string>) =>
      Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
      (sel.matchExpressions ?? []).every((e) =>
        e.operator === 'In' ? e.values!.includes(labels[e.key]!) : e.operator === 'NotIn' ? !e.values!.includes(labels[e.key]!) : e.operator === 'Exists' ? e.key in labels : !(e.key in labels),
      );
    const fluentBitChart = { 'app.kubernetes.io/name': 'fluent-bit', 'io.kubernetes.pod.namespace': 'logging' };
    const sidecarFb = { 'app.kubernetes.io/name': 'hubble-adx-fluent-bit', 'io.kubernetes.pod.namespace': 'hubble-adx' };
    const prometheus = { 'app.kubernetes.io/name': 'prometheus', 'io.kubernetes.pod.namespace': 'monitoring' };
    const amaMetrics = { rsName: 'ama-metrics', 'io.kubernetes.pod.namespace': 'kube-system' };
    const otherPod = { 'app.kubernetes.io/name': 'web', app: 'fluent-bit', 'io.kubernetes.pod.namespace': 'default' };

    it('the CiliumNetworkPolicy admits Fluent Bit (any namespace) to ingest and Prometheus to metrics, and no other pod', () => {
      const cnp = rendered.daemonset.find((d) => d.kind === 'CiliumNetworkPolicy')! as Doc & { spec: { endpointSelector: Selector; ingress: { fromEndpoints: Selector[]; toPorts: { ports: { port: string }[] }[] }[] } };
      expect(matches(cnp.spec.endpointSelector, { 'app.kubernetes.io/name': 'hubble-adx' })).toBe(true);
      const allowed = (labels: Record<string, string>, port: string) =>
        cnp.spec.ingress.some((r) => r.toPorts.some((t) => t.ports.some((p) => p.port === port)) && r.fromEndpoints.some((sel) => matches(sel, labels)));
      expect(allowed(fluentBitChart, '9880')).toBe(true);
      expect(allowed(sidecarFb, '9880')).toBe(true);
      expect(allowed(prometheus, '9881')).toBe(true);
      expect(allowed(amaMetrics, '9881')).toBe(true);
      expect(allowed(prometheus, '9880')).toBe(false);
      expect(allowed(otherPod, '9880')).toBe(false);
      expect(allowed(otherPod, '9881')).toBe(false);
    });

    it('the plain NetworkPolicy says the same and passes its schema', () => {
      const [np] = kustomize(join(K8S, 'network-policy')) as (Doc & { spec: { podSelector: Selector; ingress: { from: { podSelector: Selector }[]; ports: { port: number }[] }[] } })[];
      expect(() => modelFor(np!).validate()).not.toThrow();
      const allowed = (labels: Record<string, string>, port: number) =>
        np!.spec.ingress.some((r) => r.ports.some((p) => p.port === port) && r.from.some((f) => matches(f.podSelector, labels)));
      expect(allowed(fluentBitChart, 9880)).toBe(true);
      expect(allowed(prometheus, 9881)).toBe(true);
      expect(allowed(otherPod, 9880)).toBe(false);
      expect(allowed(prometheus, 9880)).toBe(false);
    });

    it('every shipped Fluent Bit config sends the token of the Secret', () => {
      for (const f of ['fluent-bit.conf', 'fluent-bit-file.conf']) expect(readFileSync(join(ROOT, 'deploy/fluent-bit', f), 'utf8')).toMatch(/^\s+Header\s+Authorization Bearer \$\{HUBBLE_ADX_TOKEN\}$/m);
      expect(readFileSync(join(ROOT, 'deploy/fluent-bit/fluent-bit.yaml'), 'utf8')).toContain('header: Authorization Bearer ${HUBBLE_ADX_TOKEN}');
      expect(readFileSync(join(ROOT, 'deploy/fluent-bit/helm-values.yaml'), 'utf8')).toContain('Header                   Authorization Bearer ${HUBBLE_ADX_TOKEN}');
    });
  });
});

describe('container image', () => {
  it('builds from src alone (what the Dockerfile copies) and runs as a non-root user on Node 24 LTS, built and run alike', () => {
    const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(docker).toMatch(/^FROM node:24-bookworm-slim AS build$/m);
    expect(docker).toMatch(/^FROM node:24-bookworm-slim$/m);
    expect(docker).toMatch(/^USER node$/m);
    expect(docker).toMatch(/^HEALTHCHECK /m);
    expect(docker).toContain('npm prune --omit=dev');
    const tsc = require.resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--noEmit'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
    // A type-check of the whole source takes 10-30 s on a busy 2-core machine.
  }, 120_000);
});

describe('Prometheus rules and dashboards', () => {
  let svc: Running;
  let exported: Set<string>;
  let exportedText = '';
  const monitoring = kustomize(join(K8S, 'monitoring'));
  const rule = monitoring.find((d) => d.kind === 'PrometheusRule')!;
  const groups = (rule.spec as { groups: { rules: { alert: string; expr: string; for?: string; annotations: { runbook_url: string } }[] }[] }).groups;
  beforeAll(async () => {
    svc = await startService();
    const text = await (await fetch(`${svc.url}/metrics`)).text();
    exportedText = text;
    exported = new Set([...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap((m) => (m[2] === 'histogram' ? [m[1]!, `${m[1]}_bucket`, `${m[1]}_sum`, `${m[1]}_count`] : [m[1]!])));
  });
  afterAll(() => svc.stop());

  const metricsIn = (expr: string) => [...expr.matchAll(/\bhubble_adx_[a-z_]+/g)].map((m) => m[0]);
  // What alerts may read besides hubble-adx's own: Prometheus's, kube-state-metrics', Fluent Bit's.
  const EXTERNAL =
    /^(up|kube_pod_container_status_last_terminated_reason|kube_pod_container_status_restarts_total|kube_daemonset_status_desired_number_scheduled|kube_daemonset_status_number_ready|kube_pod_info|kube_node_spec_unschedulable|fluentbit_output_dropped_records_total|fluentbit_output_retries_failed_total)$/;

  it('the PodMonitor and PrometheusRule pass their schemas', () => {
    for (const d of [...monitoring, ...kustomize(join(K8S, 'monitoring-azure'))]) expect(() => modelFor(d).validate(), `${d.apiVersion} ${d.kind}`).not.toThrow();
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
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: 18 rules found/);
    expect(r.status).toBe(0);
  });

  it('promtool rule tests: the first error of a kind fires (its series starts at 0), and so does a missing target', () => {
    if (spawnSync('promtool', ['--version']).error) {
      expect(process.env.CI, 'promtool (Debian package prometheus) is missing on CI').toBeUndefined();
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-rule-tests-'));
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: groups.map((g) => ({ name: 'hubble-adx', ...g })) }));
    writeFileSync(join(dir, 'tests.yaml'), readFileSync(join(K8S, 'monitoring/tests/alerts.test.yaml'), 'utf8'));
    const r = spawnSync('promtool', ['test', 'rules', join(dir, 'tests.yaml')], { encoding: 'utf8', cwd: dir });
    expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });

  it('every alert has a promtool case where it fires and one where it stays silent', () => {
    type Case = { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] };
    const cases = (parseYaml(readFileSync(join(K8S, 'monitoring/tests/alerts.test.yaml'), 'utf8')) as { tests: Case[] }).tests.flatMap((c) => c.alert_rule_test);
    for (const r of groups.flatMap((g) => g.rules)) {
      const mine = cases.filter((c) => c.alertname === r.alert);
      expect(mine.some((c) => c.exp_alerts.length > 0), `${r.alert} fires`).toBe(true);
      expect(mine.some((c) => c.exp_alerts.length === 0), `${r.alert} stays silent`).toBe(true);
    }
  });

  it('every alert on a condition that can come and go waits (`for:`); only first-event alerts fire at once', () => {
    for (const r of groups.flatMap((g) => g.rules)) {
      // An event that loses or sets aside data: a counter's increase, alerted on its first occurrence.
      const event = /increase\(/.test(r.expr) && !/\b(histogram_quantile|rate)\(/.test(r.expr) && r.alert !== 'HubbleLostEventsRising';
      if (!event) expect(r.for, r.alert).toMatch(/^\d+m$/);
    }
    expect(groups.flatMap((g) => g.rules).find((r) => r.alert === 'HubbleLostEventsRising')?.for).toBeDefined();
  });

  it('the runbooks are exactly the alerts, and every alert the docs name exists', () => {
    const alerts = groups.flatMap((g) => g.rules.map((r) => r.alert)).sort();
    expect(readdirSync(join(ROOT, 'docs/runbooks')).map((f) => f.replace(/\.md$/, '')).sort()).toEqual(alerts);
    const pages = ['README.md', ...readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
    const named = new Set(pages.flatMap((p) => [...readFileSync(join(ROOT, p), 'utf8').matchAll(/\b(HubbleAdx[A-Z][A-Za-z]+|HubbleLostEventsRising)\b/g)].map((m) => m[1]!)));
    expect(named.size).toBeGreaterThan(10);
    for (const n of named) expect(alerts, `${n} is named in the docs`).toContain(n);
  });

  it('labelled counters the alerts use start at 0 for every known label value', () => {
    for (const table of ['flows', 'events', 'deadLetters', 'identities']) {
      expect(exportedText).toContain(`hubble_adx_kusto_permanent_errors_total{table="${table}",reason="permanent"} 0`);
      expect(exportedText).toContain(`hubble_adx_sink_dead_lettered_rows_total{table="${table}",reason="permanent"} 0`);
    }
    expect(exportedText).toContain('hubble_adx_backpressure_responses_total{reason="spool_full"} 0');
    expect(exportedText).toContain('hubble_adx_bodies_rejected_total{reason="unauthorized"} 0');
  });

  it('every alert names only metrics the running service exports, and has a runbook of its own', () => {
    for (const r of groups.flatMap((g) => g.rules)) {
      const names = metricsIn(r.expr);
      const others = [...r.expr.matchAll(/\b([a-z_]+)(?=\{|\[)/g)].map((m) => m[1]!).filter((n) => !n.startsWith('hubble_adx_') && !['by', 'on', 'without', 'increase', 'rate', 'absent', 'sum', 'max', 'histogram_quantile'].includes(n));
      expect(names.length + others.length, r.alert).toBeGreaterThan(0);
      for (const n of names) expect(exported.has(n), `${r.alert}: ${n}`).toBe(true);
      for (const n of others) expect(n, r.alert).toMatch(EXTERNAL);
      expect(r.annotations.runbook_url).toBe(`https://github.com/hubble-adx/hubble-adx/blob/main/docs/runbooks/${r.alert}.md`);
      expect(readFileSync(join(ROOT, 'docs/runbooks', `${r.alert}.md`), 'utf8')).toMatch(new RegExp(`^# Runbook: ${r.alert}\\n`));
    }
  });

  it('the pipeline dashboard names only exported metrics', () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hubble-adx-pipeline.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const names = dash.panels.flatMap((p) => p.targets.flatMap((t) => metricsIn(t.expr)));
    expect(names.length).toBeGreaterThan(15);
    for (const n of names) expect(exported.has(n), n).toBe(true);
  });

  it('dashboards: a cluster variable on every panel, and flows counted from the de-duplicated view', () => {
    const flows = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hubble-adx-flows.json'), 'utf8')) as { templating: { list: { name: string }[] }; panels: { title: string; targets: { query: string }[] }[] };
    expect(flows.templating.list.map((v) => v.name)).toContain('cluster');
    for (const p of flows.panels) {
      for (const t of p.targets) {
        if (/^HubbleFlows\b/.test(t.query)) expect(t.query, p.title).toMatch(/^HubbleFlowsDedup\n/);
        if (!t.query.startsWith('HubbleDeadLetters')) expect(t.query, p.title).toContain('Cluster in ($cluster)');
      }
    }
    const pipeline = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hubble-adx-pipeline.json'), 'utf8')) as { templating: { list: { name: string }[] }; panels: { targets: { expr: string }[] }[] };
    expect(pipeline.templating.list.map((v) => v.name)).toContain('cluster');
    for (const t of pipeline.panels.flatMap((p) => p.targets)) for (const m of t.expr.matchAll(/\bhubble_adx_[a-z_]+(\{[^}]*\})?/g)) expect(m[1] ?? '', m[0]).toContain('cluster=~"$cluster"');
  });

  it('flow panels count the flows each row stands for (aggregates and sampling included), never rows', () => {
    const flows = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hubble-adx-flows.json'), 'utf8')) as { panels: { title: string; targets: { query: string }[] }[] };
    const flowQueries = flows.panels.flatMap((p) => p.targets.map((t) => ({ title: p.title, query: t.query }))).filter((q) => q.query.startsWith('HubbleFlowsDedup'));
    expect(flowQueries.length).toBeGreaterThanOrEqual(4);
    for (const q of flowQueries) {
      expect(q.query, q.title).toContain('sum(FlowCount * coalesce(SamplingWeight, 1))');
      expect(q.query, q.title).not.toMatch(/\bcount\(\)/);
    }
  });

  it('the flows dashboard queries pass the Kusto language service against the tables', () => {
    const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/hubble-adx-flows.json'), 'utf8')) as { panels: { title: string; targets: { query: string }[] }[] };
    for (const p of dash.panels) {
      for (const t of p.targets) {
        // The Grafana ADX data source's macros, as it expands them.
        const kql = t.query.replace(/\$__timeFilter\((\w+)\)/g, '$1 between (ago(1d) .. now())').replace(/\$__timeInterval/g, '1h').replace(/\$__timeFrom\b/g, 'ago(1d)').replace(/\$__timeTo\b/g, 'now()').replace(/\$cluster/g, "'aks-prod'");
        expect(kqlErrors(kql), p.title).toEqual([]);
      }
    }
  });
});

type FbSection = { section: string; props: Record<string, string> };

/** Fluent Bit's classic format: [SECTION] headers, then `Key value` lines; # comments. */
function readClassic(text: string): FbSection[] {
  const out: FbSection[] = [];
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

/** Fluent Bit's YAML format as the same sections (keys lower-cased, values as strings). */
function readFbYaml(text: string): FbSection[] {
  const y = parseYaml(text) as { service: Record<string, unknown>; pipeline: Partial<Record<'inputs' | 'filters' | 'outputs', Record<string, unknown>[]>> };
  const props = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k.toLowerCase(), String(v)]));
  return [
    { section: 'SERVICE', props: props(y.service) },
    ...(y.pipeline.inputs ?? []).map((p) => ({ section: 'INPUT', props: props(p) })),
    ...(y.pipeline.filters ?? []).map((p) => ({ section: 'FILTER', props: props(p) })),
    ...(y.pipeline.outputs ?? []).map((p) => ({ section: 'OUTPUT', props: props(p) })),
  ];
}

// The keys each plugin reads (Fluent Bit 4.2 documentation), and the common ones.
const KNOWN: Record<string, string[]> = {
  SERVICE: ['flush', 'daemon', 'parsers_file', 'storage.path', 'storage.sync', 'storage.backlog.mem_limit', 'storage.max_chunks_up', 'storage.metrics', 'log_level', 'http_server', 'http_listen', 'http_port', 'health_check', 'scheduler.base', 'scheduler.cap'],
  tail: ['name', 'tag', 'path', 'exclude_path', 'multiline.parser', 'read_from_head', 'path_key', 'offset_key', 'db', 'storage.type', 'refresh_interval', 'rotate_wait', 'buffer_max_size', 'skip_long_lines'],
  grep: ['name', 'match', 'regex', 'exclude', 'logical_op'],
  http: ['name', 'alias', 'match', 'host', 'port', 'uri', 'format', 'compress', 'retry_limit', 'storage.total_limit_size', 'header', 'http_user', 'http_passwd', 'tls', 'json_date_key', 'json_date_format', 'workers'],
};

describe('Fluent Bit configuration', () => {
  const classic = readClassic(readFileSync(join(ROOT, 'deploy/fluent-bit/fluent-bit.conf'), 'utf8'));
  const fileExport = readClassic(readFileSync(join(ROOT, 'deploy/fluent-bit/fluent-bit-file.conf'), 'utf8'));

  it('uses only keys the plugins read (and no Mem_Buf_Limit, which filesystem buffering ignores)', () => {
    for (const s of [...classic, ...fileExport]) {
      const plugin = s.section === 'SERVICE' ? 'SERVICE' : s.props.name!;
      for (const k of Object.keys(s.props)) expect(KNOWN[plugin], `${s.section} ${plugin}`).toContain(k);
    }
  });

  it('the classic and YAML files describe the same pipeline', () => {
    expect(readFbYaml(readFileSync(join(ROOT, 'deploy/fluent-bit/fluent-bit.yaml'), 'utf8'))).toEqual(classic);
  });

  it('sends msgpack with gzip, retries without limit and buffers on disk', () => {
    const out = classic.find((s) => s.section === 'OUTPUT')!.props;
    expect(out).toMatchObject({ name: 'http', format: 'msgpack', retry_limit: 'no_limits', port: '9880' });
    expect(out.compress).toBeUndefined();
    const input = classic.find((s) => s.section === 'INPUT')!.props;
    expect(input).toMatchObject({ name: 'tail', 'multiline.parser': 'cri', 'storage.type': 'filesystem' });
    expect(input.path).toMatch(/cilium-\*_kube-system_cilium-agent-\*\.log$/);
    expect(classic.find((s) => s.section === 'SERVICE')!.props).toMatchObject({ http_server: 'On', health_check: 'On' });
  });

  it('the file-export config tails the exporter files of self-managed and AKS-managed Cilium, as plain lines under `log`', () => {
    const input = fileExport.find((s) => s.section === 'INPUT')!.props;
    expect(input.path!.split(',')).toEqual(['/var/run/cilium/hubble/events*.log', '/var/log/acns/hubble/events*.log']);
    expect(input).toMatchObject({ name: 'tail', 'storage.type': 'filesystem' });
    expect(input['multiline.parser']).toBeUndefined();
    const out = fileExport.find((s) => s.section === 'OUTPUT')!.props;
    expect(out).toMatchObject({ name: 'http', format: 'msgpack', retry_limit: 'no_limits' });
    expect(out.compress).toBeUndefined();
    const values = parseYaml(readFileSync(join(ROOT, 'deploy/fluent-bit/cilium-values.yaml'), 'utf8')) as { hubble: { export: { static: { filePath: string } } } };
    expect(input.path!.split(',').some((p) => matchesGlob(values.hubble.export.static.filePath, p))).toBe(true);
    const acns = parseYaml(readFileSync(join(ROOT, 'deploy/fluent-bit/acns-containernetworklog.yaml'), 'utf8')) as { apiVersion: string; kind: string; spec: { includefilters: { verdict: string[] }[] } };
    expect(acns).toMatchObject({ apiVersion: 'acn.azure.com/v1alpha1', kind: 'ContainerNetworkLog' });
    expect(acns.spec.includefilters[0]!.verdict.sort()).toEqual(['dropped', 'forwarded']);
  });

  it('exporter-file lines, as tail hands them on ({log: line}), are every flow and event through the receiver', async () => {
    const svc = await startService();
    try {
      const lines = hubbleFixtureLines().map((l) => l.text);
      const acns = lines.filter((l) => l.includes('"flow"'));
      const records = lines.map((l) => ({ log: l }));
      const res = await svc.post(gzipSync(msgpackBody(records)), { 'content-type': 'application/msgpack', 'content-encoding': 'gzip' });
      expect(res.status).toBe(200);
      const summary = (await res.json()) as { flows: number; events: number; deadLettered: number };
      expect(summary.flows).toBe(acns.length);
      expect(summary.deadLettered).toBe(0);
      expect(summary.events).toBeGreaterThanOrEqual(4);
    } finally {
      await svc.stop();
    }
  });

  it('the grep filter keeps every exporter record of a real cilium-agent log and drops its agent lines', () => {
    const regex = classic.find((s) => s.section === 'FILTER')!.props.regex!;
    const [key, pattern] = [regex.slice(0, regex.indexOf(' ')), regex.slice(regex.indexOf(' ') + 1)];
    expect(key).toBe('log');
    // Onigmo and JavaScript read this pattern alike (\\ is a backslash in both).
    const re = new RegExp(pattern);
    const lines = readFileSync(join(FLUENT_BIT_DIR, 'input-cilium-agent-cri.log'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').slice(3).join(' '));
    const wanted = lines.filter((l) => /^\{"(flow|lost_events|agent_event|debug_event)"/.test(l));
    expect(wanted.length).toBeGreaterThanOrEqual(12);
    for (const l of wanted) expect(re.test(l), l.slice(0, 60)).toBe(true);
    expect(lines.filter((l) => l.startsWith('level=') || l.startsWith('time=')).some((l) => re.test(l))).toBe(false);
  });

  it('the grep filter passes every record kind the extractor handles, bare and wrapped in agent log lines', () => {
    const regex = classic.find((s) => s.section === 'FILTER')!.props.regex!;
    const re = new RegExp(regex.slice(regex.indexOf(' ') + 1));
    const records = hubbleFixtureLines().map((l) => l.text).filter((t) => parseHubbleLine(t).ok);
    const kinds = new Set(records.map((t) => Object.keys(JSON.parse(t) as object).find((k) => ['flow', 'lost_events', 'agent_event', 'debug_event', 'node_status'].includes(k))));
    expect([...kinds].sort()).toEqual(['agent_event', 'debug_event', 'flow', 'lost_events']);
    records.push(JSON.stringify({ node_status: { state: 'NODE_CONNECTED' }, node_name: 'n' }));
    // As an agent log line wraps them: logfmt (Go quoting) and slog JSON.
    const wrapped = records.flatMap((t) => [`level=info msg=${JSON.stringify(t)} subsys=hubble`, JSON.stringify({ level: 'INFO', msg: t })]);
    let kept = 0;
    for (const line of [...records, ...wrapped]) {
      expect(parseHubbleLine(line).ok, line.slice(0, 80)).toBe(true);
      expect(re.test(line), line.slice(0, 80)).toBe(true);
      kept++;
    }
    expect(kept).toBeGreaterThan(3000);
  });

  it('the Cilium Helm values export every flow to a rotated file, with the rotation keys of Cilium 1.18 (under static)', () => {
    const values = parseYaml(readFileSync(join(ROOT, 'deploy/fluent-bit/cilium-values.yaml'), 'utf8')) as { hubble: { export: Record<string, unknown> & { static: Record<string, unknown> } } };
    expect(values.hubble.export.static).toMatchObject({ enabled: true, filePath: '/var/run/cilium/hubble/events.log', fieldMask: [], fileMaxSizeMb: expect.any(Number), fileMaxBackups: expect.any(Number) });
    // The deprecated top-level keys are not set.
    expect(Object.keys(values.hubble.export).sort()).toEqual(['static']);
  });

  it('the ACNS ContainerNetworkLog selects every verdict it can (forwarded, dropped) and no endpoint', () => {
    const cnl = parseYaml(readFileSync(join(ROOT, 'deploy/fluent-bit/acns-containernetworklog.yaml'), 'utf8')) as { apiVersion: string; kind: string; spec: { includefilters: Record<string, unknown>[] } };
    expect(cnl).toMatchObject({ apiVersion: 'acn.azure.com/v1alpha1', kind: 'ContainerNetworkLog' });
    expect(cnl.spec.includefilters).toEqual([{ name: 'all-flows', verdict: ['forwarded', 'dropped'] }]);
  });
});

describe('Fluent Bit instances: every exported byte read, each record placed by file and offset, chunks retried soon', () => {
  const shipped = (f: string) => readFileSync(join(ROOT, 'deploy/fluent-bit', f), 'utf8');
  type PodVolume = { name: string; hostPath?: { path: string } };
  type Mount = { name: string; mountPath: string; readOnly?: boolean };
  const helm = parseYaml(shipped('helm-values.yaml')) as {
    tolerations: unknown;
    nodeSelector: unknown;
    affinity: unknown;
    daemonSetVolumes: PodVolume[];
    daemonSetVolumeMounts: Mount[];
    config: Record<'service' | 'inputs' | 'outputs', string>;
  };
  const sidecar = kustomize(join(K8S, 'overlays', 'sidecar'));
  const sidecarSpec = podSpec(sidecar.find((d) => d.kind === 'DaemonSet')!) as PodSpec & { volumes: PodVolume[] };
  const sidecarFb = sidecarSpec.containers.find((c) => c.name === 'fluent-bit')! as Container & { volumeMounts: Mount[] };
  const sidecarFbConfig = sidecar.find((d) => d.kind === 'ConfigMap' && /^hubble-adx-fluent-bit-[a-z0-9]{10}$/.test(d.metadata.name))!;

  it("the sidecar's Fluent Bit configuration is generated with a hash of its content in its name, which the pod mounts: an edit rolls the pods", () => {
    expect(sidecarFbConfig).toBeDefined();
    expect(sidecarSpec.volumes.some((v) => (v as { configMap?: { name: string } }).configMap?.name === sidecarFbConfig.metadata.name)).toBe(true);
  });

  // Every Fluent Bit the project ships (fluent-bit.yaml is fluent-bit.conf, checked above).
  const instances: Record<string, FbSection[]> = {
    'fluent-bit-file.conf': readClassic(shipped('fluent-bit-file.conf')),
    'fluent-bit.conf': readClassic(shipped('fluent-bit.conf')),
    'helm-values.yaml': readClassic([helm.config.service, helm.config.inputs, helm.config.outputs].join('\n')),
    'sidecar overlay': readFbYaml(sidecarFbConfig.data!['fluent-bit.yaml']!),
  };
  const inputs = (s: FbSection[]) => s.filter((x) => x.section === 'INPUT').map((x) => x.props);
  const exportInputs = (s: FbSection[]) => inputs(s).filter((p) => p.path!.includes('/hubble/'));
  const stdoutInputs = (s: FbSection[]) => inputs(s).filter((p) => p.path!.includes('cilium-agent'));
  const withoutDb = ({ db: _db, ...rest }: Record<string, string>) => rest;
  const EXPORT_DIRS = ['/var/run/cilium/hubble', '/var/log/acns/hubble'];

  it('every instance uses only keys the plugins read', () => {
    for (const [name, sections] of Object.entries(instances)) {
      for (const s of sections) {
        const plugin = s.section === 'SERVICE' ? 'SERVICE' : s.props.name!;
        for (const k of Object.keys(s.props)) expect(KNOWN[plugin], `${name}: ${s.section} ${plugin}`).toContain(k);
      }
    }
  });

  it('an export file is read from its head, with the files the agent rotated it to, and every record carries its file and offset', () => {
    const withExport = Object.entries(instances).filter(([, s]) => exportInputs(s).length > 0);
    expect(withExport.map(([n]) => n)).toEqual(['fluent-bit-file.conf', 'helm-values.yaml', 'sidecar overlay']);
    for (const [name, sections] of withExport) {
      const [input, ...more] = exportInputs(sections);
      expect(more, name).toEqual([]);
      // hubble-adx reads exactly these names (src/coverage/upstream-offsets.ts).
      expect(input, name).toMatchObject({ read_from_head: 'On', path_key: 'log_file', offset_key: 'log_offset', 'storage.type': 'filesystem' });
      expect(input!.db, name).toMatch(/\.db$/);
      // A file renamed while tailed is followed for longer than the agent keeps it: forgotten
      // earlier, it would be read again from its head (it still matches the Path).
      expect(Number(input!.rotate_wait), name).toBeGreaterThanOrEqual(7 * 24 * 3600);
      const patterns = input!.path!.split(',');
      for (const dir of EXPORT_DIRS) {
        // lumberjack's names: the live file, and backups named with their rotation time (UTC).
        for (const file of ['events.log', 'events-2026-01-02T03-04-05.678.log']) expect(patterns.some((p) => matchesGlob(`${dir}/${file}`, p)), `${name}: ${dir}/${file}`).toBe(true);
        // Compressed backups (fileCompress) and their temporary files are not tailed twice.
        for (const file of ['events-2026-01-02T03-04-05.678.log.gz', 'events-2026-01-02T03-04-05.678.log.gz.tmp', 'flows.json']) {
          expect(patterns.some((p) => matchesGlob(`${dir}/${file}`, p)), `${name}: ${dir}/${file}`).toBe(false);
        }
      }
      expect(withoutDb(input!), name).toEqual(withoutDb(exportInputs(instances['fluent-bit-file.conf']!)[0]!));
    }
  });

  it("cilium-agent's stdout is read from its head, without offsets (grep drops lines, so offsets never follow on)", () => {
    for (const name of ['fluent-bit.conf', 'sidecar overlay']) {
      const [input, ...more] = stdoutInputs(instances[name]!);
      expect(more, name).toEqual([]);
      expect(input, name).toMatchObject({ read_from_head: 'On', 'multiline.parser': 'cri' });
      expect(input!.offset_key, name).toBeUndefined();
      expect(input!.path_key, name).toBeUndefined();
    }
  });

  it('every instance tries a refused chunk again within about a minute (Fluent Bit ignores Retry-After; its default cap is 2000 s)', () => {
    for (const [name, sections] of Object.entries(instances)) {
      const service = sections.find((s) => s.section === 'SERVICE')!.props;
      expect(Number(service['scheduler.cap']), name).toBeLessThanOrEqual(60);
      expect(Number(service['scheduler.base']), name).toBeLessThanOrEqual(Number(service['scheduler.cap']));
    }
  });

  it('the output to hubble-adx is named hubble_adx in every instance (the alerts match that name)', () => {
    for (const [name, sections] of Object.entries(instances)) {
      const outputs = sections.filter((s) => s.section === 'OUTPUT').map((s) => s.props);
      expect(outputs.map((o) => [o.name, o.alias, o.port]), name).toEqual([['http', 'hubble_adx', '9880']]);
    }
  });

  it('no two instances share a buffer directory or a DB file, and each keeps them on a node path of its own', () => {
    const paths = Object.entries(instances).flatMap(([name, sections]) => [
      { name, path: sections.find((s) => s.section === 'SERVICE')!.props['storage.path']! },
      ...inputs(sections).map((p) => ({ name, path: p.db! })),
    ]);
    expect(paths.every((p) => p.path.startsWith('/var/fluent-bit/'))).toBe(true);
    expect(new Set(paths.map((p) => p.path)).size).toBe(paths.length);
    const dirOf = (p: string) => p.split('/').slice(0, 4).join('/');
    const dirs = Object.keys(instances).map((name) => new Set(paths.filter((p) => p.name === name).map((p) => dirOf(p.path))));
    for (const d of dirs) expect(d.size).toBe(1);
    expect(new Set(dirs.map((d) => [...d][0])).size).toBe(dirs.length);
    // The directory is a hostPath volume mounted where the config names it, so it outlives the pod.
    const mounted = (dir: string, volumes: PodVolume[], mounts: Mount[]) =>
      mounts.some((m) => m.mountPath === dir && !m.readOnly && volumes.find((v) => v.name === m.name)?.hostPath?.path === dir);
    expect(mounted([...dirs[2]!][0]!, helm.daemonSetVolumes, helm.daemonSetVolumeMounts)).toBe(true);
    expect(mounted([...dirs[3]!][0]!, sidecarSpec.volumes, sidecarFb.volumeMounts)).toBe(true);
  });

  it("the sidecar collects on every node: the export files (self-managed and ACNS) as fluent-bit-file.conf tails them, and cilium-agent's stdout as fluent-bit.yaml does, to the pod loopback", () => {
    const side = instances['sidecar overlay']!;
    const file = instances['fluent-bit-file.conf']!;
    const stdout = instances['fluent-bit.conf']!;
    expect(withoutDb(stdoutInputs(side)[0]!)).toEqual(withoutDb(stdoutInputs(stdout)[0]!));
    expect(side.filter((s) => s.section === 'FILTER')).toEqual(stdout.filter((s) => s.section === 'FILTER'));
    const { host, match, ...out } = side.find((s) => s.section === 'OUTPUT')!.props;
    const { host: _h, match: _m, ...shippedOut } = file.find((s) => s.section === 'OUTPUT')!.props;
    expect(out).toEqual(shippedOut);
    expect([host, match]).toEqual(['127.0.0.1', '*']);
    const { 'storage.path': _a, ...service } = side.find((s) => s.section === 'SERVICE')!.props;
    const { 'storage.path': _b, ...fileService } = file.find((s) => s.section === 'SERVICE')!.props;
    expect(service).toEqual(fileService);
    // Fluent Bit's container sees both export directories (ACNS's is under /var/log), read-only.
    for (const dir of EXPORT_DIRS) {
      const m = sidecarFb.volumeMounts.find((v) => dir === v.mountPath || dir.startsWith(`${v.mountPath}/`))!;
      expect(m, dir).toMatchObject({ readOnly: true });
      expect(sidecarSpec.volumes.find((v) => v.name === m.name)?.hostPath?.path, dir).toBe(m.mountPath);
    }
  });

  it("the chart's Fluent Bit runs where hubble-adx runs and reads both export directories; cilium-agent's log is excluded only where flows come from stdout", () => {
    const ds = podSpec(kustomize(join(K8S, 'overlays', 'daemonset')).find((d) => d.kind === 'DaemonSet')!) as PodSpec & { nodeSelector: unknown; affinity: unknown };
    expect(helm.tolerations).toEqual(ds.tolerations);
    expect(helm.nodeSelector).toEqual(ds.nodeSelector);
    expect(helm.affinity).toEqual(ds.affinity);
    for (const dir of EXPORT_DIRS) {
      const m = helm.daemonSetVolumeMounts.find((v) => dir === v.mountPath || dir.startsWith(`${v.mountPath}/`))!;
      expect(m, dir).toMatchObject({ readOnly: true });
      expect(helm.daemonSetVolumes.find((v) => v.name === m.name)?.hostPath?.path, dir).toBe(m.mountPath);
    }
    // The chart's values carry the file export only: cilium-agent's log holds no flows there.
    for (const p of inputs(instances['helm-values.yaml']!)) expect(p.exclude_path, p.path).toBeUndefined();
    for (const sections of Object.values(instances)) for (const p of stdoutInputs(sections)) expect(p.exclude_path).toBeUndefined();
  });
});
