import { dataMap, isMap, type JsonMap } from '../json-values.js';
import { SCHEMA_VERSION, type FlowRow } from '../schema/index.js';
import {
  AUTH_TYPE, DROP_REASON, DROP_REASON_CODE, EVENT_TYPE, EVENT_TYPE_DROP, FLOW_TYPE, IP_VERSION, L7_FLOW_TYPE,
  POLICY_MATCH_TYPE, TCP_FLAG_ORDER, TRACE_OBSERVATION_POINT, TRACE_REASON, TRAFFIC_DIRECTION, VERDICT, enumName,
} from './enums.js';
import type { Envelope } from './envelope.js';
import { splitNodeName, timeGenerated } from './envelope.js';
import { InvalidValue, MAX, count } from './record-values.js';

type Obj = JsonMap;
type Path = readonly string[];
type NameTable = Parameters<typeof enumName>[1];

/** What a string column takes: a string, or a number as its decimal text. */
const isText = (v: unknown): v is string | number => typeof v === 'string' || typeof v === 'number';
const absent = (v: unknown): boolean => v === undefined || v === null;
const str = (v: string | number): string | null => (typeof v === 'string' ? (v.length > 0 ? v : null) : String(v));

/**
 * Leftovers collector: every field a column does not take is kept under its original path in
 * AdditionalFlowData, so a field added by a future Cilium is stored, not lost; so is a value of a
 * type its column cannot hold (an object where a string belongs), and the column stays null. Its
 * maps have no prototype: a key is a key, `__proto__` included, never a way out of the tree.
 */
class Leftovers {
  root: Obj | null = null;
  /** The maps it made: the only ones it writes into (a handful per row, so a list). */
  private nodes: object[] | null = null;

  put(path: Path, key: string, value: unknown): void {
    if (value === undefined) return;
    let node = (this.root ??= this.node());
    for (const seg of path) {
      let next = node[seg];
      if (next === undefined) {
        next = this.node();
        node[seg] = next;
      } else if (!this.nodes?.includes(next as object)) {
        throw new Error(`AdditionalFlowData already holds a value at ${path.join('.')}`);
      }
      node = next as Obj;
    }
    node[key] = value;
  }

  /** A string column's value; anything else that is there is kept at its path. */
  text(path: Path, key: string, v: unknown): string | null {
    if (isText(v)) return str(v);
    if (!absent(v)) this.put(path, key, v);
    return null;
  }

  /** A bool column's value (also from "true"/"false"); anything else that is there is kept. */
  flag(path: Path, key: string, v: unknown): boolean | null {
    if (typeof v === 'boolean') return v;
    if (v === 'true') return true;
    if (v === 'false') return false;
    if (!absent(v)) this.put(path, key, v);
    return null;
  }

  /** An enum column's name (from a name or a number); anything else that is there is kept. */
  name(path: Path, key: string, v: unknown, names: NameTable): string | null {
    if (isText(v)) return enumName(v, names);
    if (!absent(v)) this.put(path, key, v);
    return null;
  }

  /** A column of strings (labels, names, addresses): an array of strings only; anything else is kept. */
  strings(path: Path, key: string, v: unknown): string[] | null {
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.length > 0 ? (v as string[]) : null;
    if (!absent(v)) this.put(path, key, v);
    return null;
  }

  private node(): Obj {
    const n = dataMap();
    (this.nodes ??= []).push(n);
    return n;
  }
}

function emptyRow(): FlowRow {
  return {
    TimeGenerated: null, Uuid: null, Cluster: null, NodeName: null, Verdict: null, DropReason: null,
    DropReasonCode: null, FlowType: null, EventType: null, EventSubType: null, TrafficDirection: null, IsReply: null,
    TraceObservationPoint: null, TraceReason: null, PolicyMatchType: null, AuthType: null, IpVersion: null,
    SourceIp: null, SourceIpXlated: null, DestinationIp: null, Encrypted: null, Protocol: null, SourcePort: null,
    DestinationPort: null, TcpFlags: null, IcmpType: null, IcmpCode: null,
    SourceIdentity: null, SourceNamespace: null, SourcePodName: null, SourceWorkload: null, SourceWorkloadKind: null,
    SourceClusterName: null, SourceServiceName: null, SourceServiceNamespace: null, SourceLabels: null, SourceNames: null,
    DestinationIdentity: null, DestinationNamespace: null, DestinationPodName: null, DestinationWorkload: null,
    DestinationWorkloadKind: null, DestinationClusterName: null, DestinationServiceName: null,
    DestinationServiceNamespace: null, DestinationLabels: null, DestinationNames: null,
    Interface: null, ProxyPort: null, L7Type: null, L7LatencyNs: null, HttpMethod: null, HttpUrl: null,
    HttpStatus: null, HttpProtocol: null, DnsQuery: null, DnsRcode: null, DnsIps: null, DnsQtypes: null, DnsTtl: null,
    EgressAllowedBy: null, IngressAllowedBy: null, EgressDeniedBy: null, IngressDeniedBy: null, PolicyLog: null,
    FlowCount: 1, SamplingWeight: 1, FirstSeen: null, LastSeen: null,
    // Filled by the enrich stage when enabled.
    PolicyName: null, PolicyNamespace: null, PolicyKind: null, SourceEntity: null, DestinationEntity: null,
    SourceServiceAccount: null, DestinationServiceAccount: null, SourceLabelValues: null, DestinationLabelValues: null,
    DestinationFqdns: null, SourceCidrGroups: null, DestinationCidrGroups: null, SourceIpScope: null, DestinationIpScope: null,
    SourceNetworkName: null, DestinationNetworkName: null, Region: null, Environment: null,
    Summary: null, NodeLabels: null, AdditionalFlowData: null,
    // Set by the processor: who received the row, and the coverage window that counted it.
    AggregatedFlows: null, ReceiverNode: null, RunId: null, CoverageWindow: null, SchemaVersion: SCHEMA_VERSION,
  };
}

/** One Hubble flow (protojson, Cilium 1.15 to 1.19) to one flat row. Throws InvalidValue for a number that cannot be. */
export function normalizeFlow(flow: Obj, env: Envelope, defaultCluster: string): FlowRow {
  const row = emptyRow();
  const left = new Leftovers();
  const top: Path = [];
  let nodeName: string | null = null;
  let time: string | null = null;
  let dropCode: number | null = null;
  let reply: boolean | null = null;

  for (const key in flow) {
    const v = flow[key];
    switch (key) {
      case 'time': time = left.text(top, key, v); break;
      case 'uuid': row.Uuid = left.text(top, key, v); break;
      case 'node_name': nodeName = left.text(top, key, v); break;
      case 'verdict': row.Verdict = left.name(top, key, v, VERDICT); break;
      case 'drop_reason': dropCode = count(v, 'flow.drop_reason', MAX.int32); break;
      case 'drop_reason_desc': row.DropReason = left.name(top, key, v, DROP_REASON); break;
      case 'Type': row.FlowType = left.name(top, key, v, FLOW_TYPE); break;
      case 'auth_type': row.AuthType = left.name(top, key, v, AUTH_TYPE); break;
      case 'traffic_direction': row.TrafficDirection = left.name(top, key, v, TRAFFIC_DIRECTION); break;
      case 'trace_observation_point': row.TraceObservationPoint = left.name(top, key, v, TRACE_OBSERVATION_POINT); break;
      case 'trace_reason': row.TraceReason = left.name(top, key, v, TRACE_REASON); break;
      case 'policy_match_type': row.PolicyMatchType = left.name(top, key, v, POLICY_MATCH_TYPE); break;
      case 'is_reply': row.IsReply = left.flag(top, key, v); break;
      case 'reply': reply = left.flag(top, key, v); break;
      case 'proxy_port': row.ProxyPort = count(v, 'flow.proxy_port', MAX.port); break;
      case 'Summary': row.Summary = left.text(top, key, v); break;
      case 'source_names': row.SourceNames = left.strings(top, key, v); break;
      case 'destination_names': row.DestinationNames = left.strings(top, key, v); break;
      case 'policy_log': row.PolicyLog = left.strings(top, key, v); break;
      case 'node_labels': row.NodeLabels = left.strings(top, key, v); break;
      case 'egress_allowed_by': row.EgressAllowedBy = policies(v, key, left); break;
      case 'ingress_allowed_by': row.IngressAllowedBy = policies(v, key, left); break;
      case 'egress_denied_by': row.EgressDeniedBy = policies(v, key, left); break;
      case 'ingress_denied_by': row.IngressDeniedBy = policies(v, key, left); break;
      case 'event_type': eventType(v, row, left); break;
      case 'IP': ip(v, row, left); break;
      case 'l4': l4(v, row, left); break;
      case 'l7': l7(v, row, left); break;
      case 'interface': networkInterface(v, row, left); break;
      case 'source': endpoint(v, 'source', row, left); break;
      case 'destination': endpoint(v, 'destination', row, left); break;
      case 'source_service': service(v, 'source_service', row, left); break;
      case 'destination_service': service(v, 'destination_service', row, left); break;
      case 'aggregate':
        row.FlowCount = aggregateCount(v);
        left.put(top, key, v);
        break;
      default:
        left.put(top, key, v);
    }
  }

  // is_reply is authoritative; the deprecated `reply` can only say true (false is its zero value).
  // A lone `reply: false` may be a false negative, so it is not taken as "not a reply" but kept.
  if (row.IsReply === null && reply === true) row.IsReply = true;
  else if (reply !== null && row.IsReply !== reply) left.put(top, 'reply', reply);
  if (dropCode === null && row.DropReason !== null) dropCode = DROP_REASON_CODE.get(row.DropReason) ?? null;
  if (dropCode === null && row.EventType === EVENT_TYPE.get(EVENT_TYPE_DROP)) dropCode = row.EventSubType;
  if (dropCode !== null && dropCode !== 0) {
    row.DropReasonCode = dropCode;
    if (row.DropReason === null) row.DropReason = DROP_REASON.get(dropCode) ?? null;
  }

  const node = splitNodeName(nodeName ?? env.nodeName, defaultCluster);
  row.Cluster = node.cluster;
  row.NodeName = node.node;
  row.TimeGenerated = timeGenerated(time, env);
  row.AdditionalFlowData = left.root;
  return row;
}

const DIGIT_0 = 48;
const DIGIT_9 = 57;

function eventType(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], 'event_type', v);
  for (const k in v) {
    const x = v[k];
    if (k === 'type') {
      // A name as it is, a number (or its decimal text) as the monitor's name for it.
      const c = typeof x === 'string' ? x.charCodeAt(0) : DIGIT_0;
      if (typeof x === 'string' && !(c >= DIGIT_0 && c <= DIGIT_9)) row.EventType = left.text(['event_type'], k, x);
      else {
        const n = count(x, 'flow.event_type.type', MAX.int32);
        row.EventType = n === null ? null : (EVENT_TYPE.get(n) ?? String(n));
      }
    } else if (k === 'sub_type') row.EventSubType = count(x, 'flow.event_type.sub_type', MAX.int32);
    else left.put(['event_type'], k, x);
  }
  // sub_type 0 is omitted by protojson, yet meaningful (trace to-endpoint): make it explicit.
  if (row.EventType !== null && row.EventSubType === null) row.EventSubType = 0;
}

function ip(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], 'IP', v);
  const at: Path = ['IP'];
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'source': row.SourceIp = left.text(at, k, x); break;
      case 'destination': row.DestinationIp = left.text(at, k, x); break;
      case 'source_xlated': row.SourceIpXlated = left.text(at, k, x); break;
      case 'ipVersion': row.IpVersion = left.name(at, k, x, IP_VERSION); break;
      case 'encrypted': row.Encrypted = left.flag(at, k, x); break;
      default: left.put(at, k, x);
    }
  }
}

function l4(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], 'l4', v);
  for (const proto in v) {
    const p = v[proto];
    row.Protocol = proto;
    if (!isMap(p)) {
      left.put(['l4'], proto, p);
      continue;
    }
    const field = (k: string) => `flow.l4.${proto}.${k}`;
    const isIcmp = proto === 'ICMPv4' || proto === 'ICMPv6';
    if (isIcmp) {
      // `{}` is an echo reply (type 0, code 0): protojson omits zero values.
      row.IcmpType = count(p.type, field('type'), MAX.byte) ?? 0;
      row.IcmpCode = count(p.code, field('code'), MAX.byte) ?? 0;
    }
    const ports = proto !== 'VRRP' && proto !== 'IGMP';
    for (const k in p) {
      const x = p[k];
      if (isIcmp && (k === 'type' || k === 'code')) continue;
      if (k === 'source_port' && ports) row.SourcePort = count(x, field(k), MAX.port);
      else if (k === 'destination_port' && ports) row.DestinationPort = count(x, field(k), MAX.port);
      else if (k === 'flags' && proto === 'TCP' && isMap(x)) tcpFlags(x, row, left);
      else left.put(['l4', proto], k, x);
    }
  }
}

function tcpFlags(flags: Obj, row: FlowRow, left: Leftovers): void {
  let set = '';
  for (const f of TCP_FLAG_ORDER) {
    if (flags[f] === true) set = set.length === 0 ? f : `${set},${f}`;
  }
  for (const k in flags) {
    if (!(TCP_FLAG_ORDER as readonly string[]).includes(k) || typeof flags[k] !== 'boolean') left.put(['l4', 'TCP', 'flags'], k, flags[k]);
  }
  row.TcpFlags = set.length > 0 ? set : null;
}

function l7(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], 'l7', v);
  const at: Path = ['l7'];
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'type': row.L7Type = left.name(at, k, x, L7_FLOW_TYPE); break;
      case 'latency_ns': row.L7LatencyNs = count(x, 'flow.l7.latency_ns', MAX.uint64); break;
      case 'http': http(x, row, left); break;
      case 'dns': dns(x, row, left); break;
      default: left.put(at, k, x);
    }
  }
}

function http(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put(['l7'], 'http', v);
  const at: Path = ['l7', 'http'];
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'code': row.HttpStatus = count(x, 'flow.l7.http.code', MAX.httpStatus); break;
      case 'method': row.HttpMethod = left.text(at, k, x); break;
      case 'url': row.HttpUrl = left.text(at, k, x); break;
      case 'protocol': row.HttpProtocol = left.text(at, k, x); break;
      default: left.put(at, k, x);
    }
  }
}

function dns(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put(['l7'], 'dns', v);
  const at: Path = ['l7', 'dns'];
  row.DnsRcode = 0; // rcode 0 (NOERROR) is omitted by protojson
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'query': row.DnsQuery = left.text(at, k, x); break;
      case 'rcode': row.DnsRcode = count(x, 'flow.l7.dns.rcode', MAX.dnsRcode); break;
      case 'ips': row.DnsIps = left.strings(at, k, x); break;
      case 'qtypes': row.DnsQtypes = left.strings(at, k, x); break;
      case 'ttl': row.DnsTtl = count(x, 'flow.l7.dns.ttl', MAX.uint32); break;
      default: left.put(at, k, x);
    }
  }
}

function networkInterface(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], 'interface', v);
  for (const k in v) {
    if (k === 'name') row.Interface = left.text(['interface'], k, v.name);
    else left.put(['interface'], k, v[k]);
  }
}

function endpoint(v: unknown, side: 'source' | 'destination', row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], side, v);
  const src = side === 'source';
  const at: Path = [side];
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'identity': {
        const id = count(x, `flow.${side}.identity`, MAX.uint32);
        if (src) row.SourceIdentity = id;
        else row.DestinationIdentity = id;
        break;
      }
      case 'namespace': src ? (row.SourceNamespace = left.text(at, k, x)) : (row.DestinationNamespace = left.text(at, k, x)); break;
      case 'pod_name': src ? (row.SourcePodName = left.text(at, k, x)) : (row.DestinationPodName = left.text(at, k, x)); break;
      case 'cluster_name': src ? (row.SourceClusterName = left.text(at, k, x)) : (row.DestinationClusterName = left.text(at, k, x)); break;
      case 'labels': src ? (row.SourceLabels = left.strings(at, k, x)) : (row.DestinationLabels = left.strings(at, k, x)); break;
      case 'workloads': workloads(x, side, row, left); break;
      default: left.put(at, k, x);
    }
  }
}

/**
 * Only the first workload has columns, and only a name and a kind that are text; any other
 * workload, field or value keeps the list whole in AdditionalFlowData.
 */
function workloads(x: unknown, side: 'source' | 'destination', row: FlowRow, left: Leftovers): void {
  const w = Array.isArray(x) && isMap(x[0]) ? x[0] : null;
  let whole = w === null || (x as unknown[]).length > 1;
  if (w) {
    for (const k in w) {
      const f = w[k];
      if ((k !== 'name' && k !== 'kind') || !(isText(f) || absent(f))) whole = true;
    }
    const name = isText(w.name) ? str(w.name) : null;
    const kind = isText(w.kind) ? str(w.kind) : null;
    if (side === 'source') {
      row.SourceWorkload = name;
      row.SourceWorkloadKind = kind;
    } else {
      row.DestinationWorkload = name;
      row.DestinationWorkloadKind = kind;
    }
  }
  if (whole) left.put([side], 'workloads', x);
}

function service(v: unknown, key: 'source_service' | 'destination_service', row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], key, v);
  const src = key === 'source_service';
  const at: Path = [key];
  for (const k in v) {
    const x = v[k];
    if (k === 'name') src ? (row.SourceServiceName = left.text(at, k, x)) : (row.DestinationServiceName = left.text(at, k, x));
    else if (k === 'namespace') src ? (row.SourceServiceNamespace = left.text(at, k, x)) : (row.DestinationServiceNamespace = left.text(at, k, x));
    else left.put(at, k, x);
  }
}

/**
 * Policy references, renamed to the table's PascalCase. A field Cilium may add later has no place
 * in the policy record, so it is kept in AdditionalFlowData at its own path (key.index.field).
 */
function policies(v: unknown, key: string, left: Leftovers): unknown[] | null {
  if (!Array.isArray(v)) {
    left.put([], key, v);
    return null;
  }
  const out: unknown[] = [];
  for (let i = 0; i < v.length; i++) {
    const p: unknown = v[i];
    const index = String(i);
    if (!isMap(p)) {
      left.put([key], index, p);
      continue;
    }
    const at: Path = [key, index];
    const ref: Obj = { Name: null, Namespace: null, Kind: null, Revision: null, Labels: null };
    for (const k in p) {
      const x = p[k];
      switch (k) {
        case 'name': ref.Name = left.text(at, k, x); break;
        case 'namespace': ref.Namespace = left.text(at, k, x); break;
        case 'kind': ref.Kind = left.text(at, k, x); break;
        case 'revision': ref.Revision = count(x, `flow.${key}.revision`, MAX.uint64); break;
        case 'labels': ref.Labels = left.strings(at, k, x); break;
        default: left.put(at, k, x);
      }
    }
    out.push(ref);
  }
  return out.length > 0 ? out : null;
}

/**
 * Sum of the counts of an aggregated flow (Cilium writes uint32 `*_flow_count`s); 1 when there is
 * nothing countable. One row may claim at most MAX.count flows.
 */
function aggregateCount(v: unknown): number {
  if (!isMap(v)) return 1;
  let sum = 0;
  let seen = false;
  for (const k in v) {
    if (!k.endsWith('count')) continue;
    const n = count(v[k], `flow.aggregate.${k}`, MAX.count);
    if (n !== null) {
      sum += n;
      seen = true;
    }
  }
  if (sum > MAX.count) throw new InvalidValue('flow.aggregate', `counts add up to ${sum}, over the ${MAX.count} flows one row may stand for`);
  return seen && sum > 0 ? sum : 1;
}
