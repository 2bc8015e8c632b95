/**
 * A seeded generator of realistic cilium-agent stdout: Hubble exporter lines in the exporter's JSON
 * shape (Cilium 1.16+ fields) mixed with ordinary agent log lines. Same seed, same lines.
 */

/** mulberry32: a small seeded PRNG, the same sequence for the same seed (also used by the fuzzer). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMESPACES = ['shop', 'payments', 'kube-system', 'monitoring', 'default', 'ingress-nginx'];
const APPS = ['web', 'api', 'cart', 'checkout', 'redis', 'postgres', 'coredns', 'prometheus', 'worker'];
const NAMESPACE_LABEL_KEYS = ['team', 'cost-center', 'environment', 'istio-injection', 'owner', 'compliance.example.com/scope', 'backup.example.com/tier', 'pod-security.kubernetes.io/enforce', 'pod-security.kubernetes.io/audit', 'pod-security.kubernetes.io/warn', 'kustomize.toolkit.fluxcd.io/name', 'kustomize.toolkit.fluxcd.io/namespace', 'policy.example.com/egress', 'policy.example.com/ingress', 'billing.example.com/project', 'region'];
const POD_LABEL_KEYS = ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/component', 'app.kubernetes.io/part-of', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/version', 'helm.sh/chart', 'version', 'tier', 'track', 'azure.workload.identity/use', 'sidecar.istio.io/inject', 'security.istio.io/tlsMode', 'service.istio.io/canonical-name', 'service.istio.io/canonical-revision', 'topology.kubernetes.io/zone', 'release', 'heritage', 'chart', 'component'];

/** One pod of a workload: what Hubble reports for it does not change from flow to flow. */
interface Replica {
  ID: number;
  podName: string;
  ipv4: string;
  ipv6: string;
  ifIndex: number;
  ifName: string;
}

/** A security identity: Cilium derives it from the pod's and its namespace's labels. */
interface Workload {
  namespace: string;
  app: string;
  identity: number;
  labels: string[];
  replicas: Replica[];
}

export class FlowGenerator {
  private readonly rnd: () => number;
  private seq = 0;
  private readonly workloads: Workload[];
  constructor(seed = 42, private readonly cluster = 'aks-bench', private readonly node = 'aks-nodepool1-12345678-vmss000000') {
    this.rnd = mulberry32(seed);
    this.workloads = this.workloadPool();
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rnd() * xs.length)]!;
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.rnd() * (hi - lo + 1));
  }

  private ip(v6: boolean): string {
    return v6 ? `fd00:10:244:${this.int(1, 9)}::${this.int(1, 0xffff).toString(16)}` : `10.244.${this.int(0, 20)}.${this.int(2, 254)}`;
  }

  /**
   * The cluster's workloads, fixed for the run: labels belong to an identity, not to a flow, so
   * the same label sets repeat across flows as they do on a real node (which is what makes them
   * compress). Every endpoint carries 10-40 labels: Cilium's own, its namespace's, its pod's.
   */
  private workloadPool(): Workload[] {
    const nsLabels = new Map<string, string[]>();
    for (const ns of NAMESPACES) {
      const own = [`k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=${ns}`];
      const n = this.int(2, 14);
      for (let i = 0; i < n; i++) own.push(`k8s:io.cilium.k8s.namespace.labels.${NAMESPACE_LABEL_KEYS[i]}=${ns}-${this.int(0, 9)}`);
      nsLabels.set(ns, own);
    }
    const pool: Workload[] = [];
    for (const ns of NAMESPACES) {
      for (const app of APPS) {
        if (this.rnd() < 0.4) continue;
        const labels = [`k8s:app=${app}`, `k8s:io.kubernetes.pod.namespace=${ns}`, `k8s:io.cilium.k8s.policy.serviceaccount=${app}`, 'k8s:io.cilium.k8s.policy.cluster=default', ...nsLabels.get(ns)!];
        const podLabels = this.int(3, 20);
        for (let i = 0; i < podLabels; i++) labels.push(`k8s:${POD_LABEL_KEYS[i]}=${app}-${this.int(0, 99)}`);
        const hash = this.int(0x10000000, 0xffffffff).toString(16).slice(0, 10);
        const replicas: Replica[] = [];
        const count = this.int(1, 4);
        for (let r = 0; r < count; r++) {
          replicas.push({ ID: this.int(100, 4000), podName: `${app}-${hash}-${this.int(0x10000, 0xfffff).toString(36).slice(0, 5)}`, ipv4: this.ip(false), ipv6: this.ip(true), ifIndex: this.int(2, 200), ifName: `lxc${this.int(0x1000000, 0xfffffff).toString(16)}` });
        }
        pool.push({ namespace: ns, app, identity: this.int(256, 70000), labels: labels.slice(0, 40), replicas });
      }
    }
    return pool;
  }

  private endpoint() {
    const w = this.pick(this.workloads);
    const r = this.pick(w.replicas);
    return {
      ep: {
        ID: r.ID,
        identity: w.identity,
        cluster_name: this.cluster,
        namespace: w.namespace,
        labels: w.labels,
        pod_name: r.podName,
        workloads: [{ name: w.app, kind: 'Deployment' }],
      },
      replica: r,
    };
  }

  private uuid(): string {
    const h = () => this.int(0, 0xffff).toString(16).padStart(4, '0');
    return `${h()}${h()}-${h()}-4${h().slice(1)}-a${h().slice(1)}-${h()}${h()}${h()}`;
  }

  /** One exporter line: `{"flow":{...},"node_name":"cluster/node","time":"..."}`. */
  flowLine(): string {
    const r = this.rnd();
    const v6 = this.rnd() < 0.1;
    const t = new Date(1_795_161_600_000 + this.seq++ * 3).toISOString().replace('Z', '123456Z');
    const nodeName = `${this.cluster}/${this.node}`;
    const { ep: src, replica: srcPod } = this.endpoint();
    const { ep: dst, replica: dstPod } = this.endpoint();
    const flow: Record<string, unknown> = {
      time: t,
      uuid: this.uuid(),
      verdict: 'FORWARDED',
      ethernet: { source: 'ce:38:1f:4b:21:dd', destination: 'fa:ce:3c:de:8b:f8' },
      IP: { source: v6 ? srcPod.ipv6 : srcPod.ipv4, destination: v6 ? dstPod.ipv6 : dstPod.ipv4, ipVersion: v6 ? 'IPv6' : 'IPv4' },
      source: src,
      destination: dst,
      Type: 'L3_L4',
      node_name: nodeName,
      event_type: { type: 4 },
      traffic_direction: this.rnd() < 0.5 ? 'EGRESS' : 'INGRESS',
      trace_observation_point: 'TO_ENDPOINT',
      trace_reason: 'ESTABLISHED',
      is_reply: this.rnd() < 0.5,
      interface: { index: dstPod.ifIndex, name: dstPod.ifName },
      Summary: '',
    };
    if (r < 0.1) {
      flow.verdict = 'DROPPED';
      flow.drop_reason = 133;
      flow.drop_reason_desc = 'POLICY_DENIED';
      flow.event_type = { type: 1, sub_type: 133 };
      flow.l4 = { TCP: { source_port: this.int(32768, 60999), destination_port: this.pick([80, 443, 5432, 6379]), flags: { SYN: true } } };
      flow.ingress_denied_by = [{ name: 'deny-cross-ns', namespace: dst.namespace, kind: 'CiliumNetworkPolicy', revision: String(this.int(1, 50)) }];
      flow.Summary = 'TCP Flags: SYN';
    } else if (r < 0.18) {
      flow.Type = 'L7';
      flow.event_type = { type: 129 };
      flow.l4 = { UDP: { source_port: this.int(32768, 60999), destination_port: 53 } };
      flow.l7 = { type: this.rnd() < 0.5 ? 'REQUEST' : 'RESPONSE', latency_ns: String(this.int(10000, 900000)), dns: { query: `${this.pick(APPS)}.${this.pick(NAMESPACES)}.svc.cluster.local.`, ips: ['10.0.0.10'], ttl: 30, qtypes: ['A'], rrtypes: ['A'], observation_source: 'proxy' } };
      flow.Summary = 'DNS Answer';
    } else if (r < 0.23) {
      flow.Type = 'L7';
      flow.event_type = { type: 129 };
      flow.l4 = { TCP: { source_port: this.int(32768, 60999), destination_port: 8080 } };
      flow.l7 = { type: 'RESPONSE', latency_ns: String(this.int(100000, 90000000)), http: { code: this.pick([200, 200, 200, 404, 503]), method: 'GET', url: `http://api.shop:8080/v1/items/${this.int(1, 99999)}?page=${this.int(1, 9)}`, protocol: 'HTTP/1.1', headers: [{ key: 'content-type', value: 'application/json' }, { key: 'x-request-id', value: this.uuid() }] } };
      flow.Summary = 'HTTP/1.1 200 GET';
    } else if (r < 0.27) {
      flow.l4 = v6 ? { ICMPv6: { type: 128 } } : { ICMPv4: { type: 8 } };
      flow.Summary = 'ICMP EchoRequest';
    } else {
      const flags = this.pick([{ ACK: true }, { PSH: true, ACK: true }, { SYN: true }, { SYN: true, ACK: true }, { FIN: true, ACK: true }]);
      flow.l4 = { TCP: { source_port: this.int(32768, 60999), destination_port: this.pick([80, 443, 8080, 5432, 6379, 9090]), flags } };
      flow.egress_allowed_by = [{ name: 'allow-app', namespace: src.namespace, kind: 'CiliumNetworkPolicy', revision: String(this.int(1, 50)) }];
      flow.Summary = 'TCP Flags: ACK';
    }
    return JSON.stringify({ flow, node_name: nodeName, time: t });
  }

  agentLine(): string {
    return `time="2026-11-20T08:00:${String(this.int(0, 59)).padStart(2, '0')}Z" level=info msg="Policy imported via API, recalculating..." policyRevision=${this.int(1, 999)} subsys=daemon`;
  }

  /** `n` lines of cilium-agent stdout, about one agent log line per 20 flows. */
  lines(n: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.rnd() < 0.05 ? this.agentLine() : this.flowLine());
    return out;
  }
}
