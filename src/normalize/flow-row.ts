import { isMap, toNumber, type JsonMap } from '../json-values.js';
import { SCHEMA_VERSION, type FlowRow } from '../schema/index.js';
import {
  AUTH_TYPE, DROP_REASON, DROP_REASON_CODE, EVENT_TYPE, EVENT_TYPE_DROP, FLOW_TYPE, IP_VERSION, L7_FLOW_TYPE,
  POLICY_MATCH_TYPE, TCP_FLAG_ORDER, TRACE_OBSERVATION_POINT, TRACE_REASON, TRAFFIC_DIRECTION, VERDICT, enumName,
} from './enums.js';
import type { Envelope } from './envelope.js';
import { splitNodeName, timeGenerated } from './envelope.js';

type Obj = JsonMap;

const str = (v: unknown): string | null => (typeof v === 'string' ? (v.length > 0 ? v : null) : typeof v === 'number' ? String(v) : null);
const bool = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : null);
/** uint32/int32 arrive as numbers, uint64 as decimal strings (protojson). */
const int = toNumber;
const arr = (v: unknown): unknown[] | null => (Array.isArray(v) && v.length > 0 ? v : null);

/**
 * Leftovers collector: every field a column does not take is kept under its original path in
 * AdditionalFlowData, so a field added by a future Cilium is stored, not lost.
 */
class Leftovers {
  root: Obj | null = null;
  put(path: readonly string[], key: string, value: unknown): void {
    if (value === undefined) return;
    if (!this.root) this.root = {};
    let node = this.root;
    for (const seg of path) {
      let next = node[seg];
      if (!isMap(next)) {
        next = {};
        node[seg] = next;
      }
      node = next as Obj;
    }
    node[key] = value;
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

/** One Hubble flow (protojson, Cilium 1.15 to 1.19) to one flat row. */
export function normalizeFlow(flow: Obj, env: Envelope, defaultCluster: string): FlowRow {
  const row = emptyRow();
  const left = new Leftovers();
  let nodeName: string | null = null;
  let time: string | null = null;
  let dropCode: number | null = null;
  let reply: boolean | null = null;

  for (const key in flow) {
    const v = flow[key];
    switch (key) {
      case 'time': time = str(v); break;
      case 'uuid': row.Uuid = str(v); break;
      case 'node_name': nodeName = str(v); break;
      case 'verdict': row.Verdict = enumName(v, VERDICT); break;
      case 'drop_reason': dropCode = int(v); break;
      case 'drop_reason_desc': row.DropReason = enumName(v, DROP_REASON); break;
      case 'Type': row.FlowType = enumName(v, FLOW_TYPE); break;
      case 'auth_type': row.AuthType = enumName(v, AUTH_TYPE); break;
      case 'traffic_direction': row.TrafficDirection = enumName(v, TRAFFIC_DIRECTION); break;
      case 'trace_observation_point': row.TraceObservationPoint = enumName(v, TRACE_OBSERVATION_POINT); break;
      case 'trace_reason': row.TraceReason = enumName(v, TRACE_REASON); break;
      case 'policy_match_type': row.PolicyMatchType = enumName(v, POLICY_MATCH_TYPE); break;
      case 'is_reply': row.IsReply = bool(v); break;
      case 'reply': reply = bool(v); break;
      case 'proxy_port': row.ProxyPort = int(v); break;
      case 'Summary': row.Summary = str(v); break;
      case 'source_names': row.SourceNames = arr(v); break;
      case 'destination_names': row.DestinationNames = arr(v); break;
      case 'policy_log': row.PolicyLog = arr(v); break;
      case 'node_labels': row.NodeLabels = arr(v); break;
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
        left.put([], key, v);
        break;
      default:
        left.put([], key, v);
    }
  }

  // is_reply is authoritative; the deprecated `reply` can only say true (false is its zero value).
  // A lone `reply: false` may be a false negative, so it is not taken as "not a reply" but kept.
  if (row.IsReply === null && reply === true) row.IsReply = true;
  else if (reply !== null && row.IsReply !== reply) left.put([], 'reply', reply);
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

function eventType(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], 'event_type', v);
  for (const k in v) {
    if (k === 'type') {
      const n = int(v.type);
      row.EventType = n === null ? str(v.type) : (EVENT_TYPE.get(n) ?? String(n));
    } else if (k === 'sub_type') row.EventSubType = int(v.sub_type);
    else left.put(['event_type'], k, v[k]);
  }
  // sub_type 0 is omitted by protojson, yet meaningful (trace to-endpoint): make it explicit.
  if (row.EventType !== null && row.EventSubType === null) row.EventSubType = 0;
}

function ip(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], 'IP', v);
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'source': row.SourceIp = str(x); break;
      case 'destination': row.DestinationIp = str(x); break;
      case 'source_xlated': row.SourceIpXlated = str(x); break;
      case 'ipVersion': row.IpVersion = enumName(x, IP_VERSION); break;
      case 'encrypted': row.Encrypted = bool(x); break;
      default: left.put(['IP'], k, x);
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
    const isIcmp = proto === 'ICMPv4' || proto === 'ICMPv6';
    if (isIcmp) {
      // `{}` is an echo reply (type 0, code 0): protojson omits zero values.
      row.IcmpType = int(p.type) ?? 0;
      row.IcmpCode = int(p.code) ?? 0;
    }
    for (const k in p) {
      const x = p[k];
      if (isIcmp && (k === 'type' || k === 'code')) continue;
      if (k === 'source_port' && proto !== 'VRRP' && proto !== 'IGMP') row.SourcePort = int(x);
      else if (k === 'destination_port' && proto !== 'VRRP' && proto !== 'IGMP') row.DestinationPort = int(x);
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
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'type': row.L7Type = enumName(x, L7_FLOW_TYPE); break;
      case 'latency_ns': row.L7LatencyNs = int(x); break;
      case 'http': http(x, row, left); break;
      case 'dns': dns(x, row, left); break;
      default: left.put(['l7'], k, x);
    }
  }
}

function http(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put(['l7'], 'http', v);
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'code': row.HttpStatus = int(x); break;
      case 'method': row.HttpMethod = str(x); break;
      case 'url': row.HttpUrl = str(x); break;
      case 'protocol': row.HttpProtocol = str(x); break;
      default: left.put(['l7', 'http'], k, x);
    }
  }
}

function dns(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put(['l7'], 'dns', v);
  row.DnsRcode = 0; // rcode 0 (NOERROR) is omitted by protojson
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'query': row.DnsQuery = str(x); break;
      case 'rcode': row.DnsRcode = int(x); break;
      case 'ips': row.DnsIps = arr(x); break;
      case 'qtypes': row.DnsQtypes = arr(x); break;
      case 'ttl': row.DnsTtl = int(x); break;
      default: left.put(['l7', 'dns'], k, x);
    }
  }
}

function networkInterface(v: unknown, row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], 'interface', v);
  for (const k in v) {
    if (k === 'name') row.Interface = str(v.name);
    else left.put(['interface'], k, v[k]);
  }
}

function endpoint(v: unknown, side: 'source' | 'destination', row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], side, v);
  const src = side === 'source';
  for (const k in v) {
    const x = v[k];
    switch (k) {
      case 'identity': src ? (row.SourceIdentity = int(x)) : (row.DestinationIdentity = int(x)); break;
      case 'namespace': src ? (row.SourceNamespace = str(x)) : (row.DestinationNamespace = str(x)); break;
      case 'pod_name': src ? (row.SourcePodName = str(x)) : (row.DestinationPodName = str(x)); break;
      case 'cluster_name': src ? (row.SourceClusterName = str(x)) : (row.DestinationClusterName = str(x)); break;
      case 'labels': src ? (row.SourceLabels = arr(x)) : (row.DestinationLabels = arr(x)); break;
      case 'workloads': {
        const w = Array.isArray(x) && isMap(x[0]) ? x[0] : null;
        if (w) {
          if (src) {
            row.SourceWorkload = str(w.name);
            row.SourceWorkloadKind = str(w.kind);
          } else {
            row.DestinationWorkload = str(w.name);
            row.DestinationWorkloadKind = str(w.kind);
          }
        }
        // Only the first workload has columns; any others stay whole in AdditionalFlowData.
        if (!w || (x as unknown[]).length > 1) left.put([side], k, x);
        break;
      }
      default: left.put([side], k, x);
    }
  }
}

function service(v: unknown, key: 'source_service' | 'destination_service', row: FlowRow, left: Leftovers): void {
  if (!isMap(v)) return left.put([], key, v);
  const src = key === 'source_service';
  for (const k in v) {
    const x = v[k];
    if (k === 'name') src ? (row.SourceServiceName = str(x)) : (row.DestinationServiceName = str(x));
    else if (k === 'namespace') src ? (row.SourceServiceNamespace = str(x)) : (row.DestinationServiceNamespace = str(x));
    else left.put([key], k, x);
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
    if (!isMap(p)) {
      left.put([key], String(i), p);
      continue;
    }
    const ref: Obj = { Name: null, Namespace: null, Kind: null, Revision: null, Labels: null };
    for (const k in p) {
      const x = p[k];
      switch (k) {
        case 'name': ref.Name = str(x); break;
        case 'namespace': ref.Namespace = str(x); break;
        case 'kind': ref.Kind = str(x); break;
        case 'revision': ref.Revision = int(x); break;
        case 'labels': ref.Labels = arr(x); break;
        default: left.put([key, String(i)], k, x);
      }
    }
    out.push(ref);
  }
  return out.length > 0 ? out : null;
}

/** Sum of the counts of an aggregated flow; 1 when there is nothing countable. */
function aggregateCount(v: unknown): number {
  if (!isMap(v)) return 1;
  let sum = 0;
  let seen = false;
  for (const k in v) {
    if (!k.endsWith('count')) continue;
    const n = int(v[k]);
    if (n !== null) {
      sum += n;
      seen = true;
    }
  }
  return seen && sum > 0 ? sum : 1;
}
