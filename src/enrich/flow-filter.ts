import { BlockList } from 'node:net';
import { EVENT_TYPE } from '../normalize/enums.js';
import type { FlowRow } from '../schema/index.js';
import { addCidr, inBlock } from './ip-scope.js';

/**
 * Hubble's FlowFilter (flow.proto), applied to normalized rows, with the same semantics as the
 * Hubble exporter's allowList/denyList: inside one filter every field given must match (AND), a
 * field matches when any of its values does (OR); a row passes the allow list when any filter
 * matches (or the list is empty) and the deny list when none does.
 */
export interface FlowFilterSpec {
  uuid?: string[];
  source_ip?: string[];
  source_pod?: string[];
  source_fqdn?: string[];
  source_label?: string[];
  source_service?: string[];
  source_workload?: { name?: string; kind?: string }[];
  destination_ip?: string[];
  destination_pod?: string[];
  destination_fqdn?: string[];
  destination_label?: string[];
  destination_service?: string[];
  destination_workload?: { name?: string; kind?: string }[];
  traffic_direction?: string[];
  verdict?: string[];
  drop_reason_desc?: string[];
  event_type?: { type: number | string; sub_type?: number }[];
  protocol?: string[];
  source_port?: string[];
  destination_port?: string[];
  reply?: boolean[];
  node_name?: string[];
  ip_version?: string[];
  http_status?: string[];
  http_method?: string[];
  dns_query?: string[];
}

type Test = (row: FlowRow) => boolean;

/** `ns/prefix`, `prefix` (any namespace) or `ns/` (the whole namespace). */
function podTest(values: string[], ns: (r: FlowRow) => string | null, name: (r: FlowRow) => string | null): Test {
  const parsed = values.map((v) => {
    const slash = v.indexOf('/');
    return slash < 0 ? { ns: null, prefix: v } : { ns: v.slice(0, slash), prefix: v.slice(slash + 1) };
  });
  return (r) => {
    const n = ns(r);
    const p = name(r);
    return parsed.some((f) => (f.ns === null || f.ns === n) && (f.prefix === '' ? f.ns !== null : p !== null && p.startsWith(f.prefix)));
  };
}

function ipTest(values: string[], ip: (r: FlowRow) => string | null): Test {
  const block = new BlockList();
  for (const v of values) addCidr(block, v);
  return (r) => {
    const a = ip(r);
    return a !== null && inBlock(block, a);
  };
}

/** Exact names, or `*` wildcards (`*.example.com`). */
function globTest(values: string[], get: (r: FlowRow) => string[] | null): Test {
  const res = values.map((v) => new RegExp(`^${v.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i'));
  return (r) => {
    const names = get(r);
    return names !== null && names.some((n) => res.some((re) => re.test(n)));
  };
}

interface Requirement {
  key: string;
  op: 'eq' | 'neq' | 'exists' | 'notexists' | 'in' | 'notin';
  values: string[];
}

/** Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`. */
export function parseSelector(sel: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sel) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((raw) => {
    const p = raw.trim();
    const set = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p);
    if (set) return { key: set[1]!, op: set[2] as 'in' | 'notin', values: set[3]!.split(',').map((v) => v.trim()).filter(Boolean) };
    if (p.startsWith('!')) return { key: p.slice(1).trim(), op: 'notexists', values: [] };
    const neq = p.indexOf('!=');
    if (neq > 0) return { key: p.slice(0, neq).trim(), op: 'neq', values: [p.slice(neq + 2).trim()] };
    const eq = p.indexOf('=');
    if (eq > 0) return { key: p.slice(0, eq).trim(), op: 'eq', values: [p.slice(p[eq + 1] === '=' ? eq + 2 : eq + 1).trim()] };
    if (p.length === 0) throw new Error(`empty requirement in label selector "${sel}"`);
    return { key: p, op: 'exists', values: [] };
  });
}

/**
 * Cilium labels (`k8s:app=web`) as a map; a selector key without a source (`app`) matches the label
 * from any source, as in Hubble.
 */
function labelMap(labels: unknown): Map<string, string> {
  const m = new Map<string, string>();
  if (!Array.isArray(labels)) return m;
  for (const l of labels) {
    if (typeof l !== 'string') continue;
    const eq = l.indexOf('=');
    const key = eq < 0 ? l : l.slice(0, eq);
    const value = eq < 0 ? '' : l.slice(eq + 1);
    m.set(key, value);
    const colon = key.indexOf(':');
    if (colon > 0 && !m.has(key.slice(colon + 1))) m.set(key.slice(colon + 1), value);
  }
  return m;
}

function labelTest(values: string[], labels: (r: FlowRow) => unknown): Test {
  const selectors = values.map(parseSelector);
  return (r) => {
    const m = labelMap(labels(r));
    return selectors.some((reqs) =>
      reqs.every((q) => {
        const v = m.get(q.key);
        switch (q.op) {
          case 'eq': return v === q.values[0];
          case 'neq': return v !== q.values[0];
          case 'exists': return v !== undefined;
          case 'notexists': return v === undefined;
          case 'in': return v !== undefined && q.values.includes(v);
          case 'notin': return v === undefined || !q.values.includes(v);
        }
      }),
    );
  };
}

const oneOf = <T>(values: T[], get: (r: FlowRow) => T | null, norm: (x: T) => T = (x) => x): Test => {
  const set = new Set(values.map(norm));
  return (r) => {
    const v = get(r);
    return v !== null && set.has(norm(v));
  };
};

const upper = (s: string) => s.toUpperCase();

function workloadTest(values: { name?: string; kind?: string }[], name: (r: FlowRow) => string | null, kind: (r: FlowRow) => string | null): Test {
  return (r) => values.some((w) => (w.name === undefined || w.name === name(r)) && (w.kind === undefined || w.kind === kind(r)));
}

function httpStatusTest(values: string[]): Test {
  // "404" exact; "5+" any 5xx, "40+" 400-409, as in Hubble.
  const tests = values.map((v) => {
    if (v.endsWith('+')) {
      const prefix = v.slice(0, -1);
      return (code: number) => String(code).startsWith(prefix);
    }
    const n = Number(v);
    return (code: number) => code === n;
  });
  return (r) => r.HttpStatus !== null && tests.some((t) => t(r.HttpStatus as number));
}

function eventTypeTest(values: { type: number | string; sub_type?: number }[]): Test {
  const want = values.map((v) => ({ name: typeof v.type === 'number' ? (EVENT_TYPE.get(v.type) ?? String(v.type)) : v.type, sub: v.sub_type }));
  return (r) => want.some((w) => w.name === r.EventType && (w.sub === undefined || w.sub === r.EventSubType));
}

function compileOne(f: FlowFilterSpec): Test {
  const tests: Test[] = [];
  const add = <K extends keyof FlowFilterSpec>(k: K, make: (v: NonNullable<FlowFilterSpec[K]>) => Test) => {
    const v = f[k];
    if (v !== undefined && (v as unknown[]).length > 0) tests.push(make(v as NonNullable<FlowFilterSpec[K]>));
  };
  add('uuid', (v) => oneOf(v, (r) => r.Uuid));
  add('source_ip', (v) => ipTest(v, (r) => r.SourceIp));
  add('destination_ip', (v) => ipTest(v, (r) => r.DestinationIp));
  add('source_pod', (v) => podTest(v, (r) => r.SourceNamespace, (r) => r.SourcePodName));
  add('destination_pod', (v) => podTest(v, (r) => r.DestinationNamespace, (r) => r.DestinationPodName));
  add('source_service', (v) => podTest(v, (r) => r.SourceServiceNamespace, (r) => r.SourceServiceName));
  add('destination_service', (v) => podTest(v, (r) => r.DestinationServiceNamespace, (r) => r.DestinationServiceName));
  add('source_fqdn', (v) => globTest(v, (r) => r.SourceNames as string[] | null));
  add('destination_fqdn', (v) => globTest(v, (r) => (r.DestinationFqdns ?? r.DestinationNames) as string[] | null));
  add('source_label', (v) => labelTest(v, (r) => r.SourceLabels));
  add('destination_label', (v) => labelTest(v, (r) => r.DestinationLabels));
  add('source_workload', (v) => workloadTest(v, (r) => r.SourceWorkload, (r) => r.SourceWorkloadKind));
  add('destination_workload', (v) => workloadTest(v, (r) => r.DestinationWorkload, (r) => r.DestinationWorkloadKind));
  add('traffic_direction', (v) => oneOf(v, (r) => r.TrafficDirection, upper));
  add('verdict', (v) => oneOf(v, (r) => r.Verdict, upper));
  add('drop_reason_desc', (v) => oneOf(v, (r) => r.DropReason, upper));
  add('event_type', (v) => eventTypeTest(v));
  add('protocol', (v) => oneOf(v, (r) => r.Protocol, upper));
  add('source_port', (v) => oneOf(v.map(Number), (r) => r.SourcePort));
  add('destination_port', (v) => oneOf(v.map(Number), (r) => r.DestinationPort));
  add('reply', (v) => oneOf(v, (r) => r.IsReply));
  add('node_name', (v) => globTest(v, (r) => (r.NodeName === null ? null : [r.NodeName, `${r.Cluster}/${r.NodeName}`])));
  add('ip_version', (v) => oneOf(v, (r) => r.IpVersion, (x) => x.toLowerCase()));
  add('http_status', (v) => httpStatusTest(v));
  add('http_method', (v) => oneOf(v, (r) => r.HttpMethod, upper));
  add('dns_query', (v) => {
    const res = v.map((x) => new RegExp(x));
    return (r) => r.DnsQuery !== null && res.some((re) => re.test(r.DnsQuery as string));
  });
  return (r) => tests.every((t) => t(r));
}

export class FlowFilters {
  private readonly allow: Test[];
  private readonly deny: Test[];
  constructor(allowList: readonly FlowFilterSpec[], denyList: readonly FlowFilterSpec[]) {
    this.allow = allowList.map(compileOne);
    this.deny = denyList.map(compileOne);
  }

  get active(): boolean {
    return this.allow.length > 0 || this.deny.length > 0;
  }

  /** Whether the row is kept. */
  pass(row: FlowRow): boolean {
    if (this.allow.length > 0 && !this.allow.some((t) => t(row))) return false;
    return !this.deny.some((t) => t(row));
  }
}
