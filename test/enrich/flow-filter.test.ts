import { describe, expect, it } from 'vitest';
import { FlowFilters, parseSelector, type FlowFilterSpec } from '../../src/enrich/index.js';
import { normalizeFlow } from '../../src/normalize/index.js';

const env = { nodeName: 'aks-1/node-a', time: null, lineTime: null, lineTimeSec: null };
const web = normalizeFlow(
  {
    uuid: 'u-web',
    verdict: 'FORWARDED',
    traffic_direction: 'EGRESS',
    is_reply: false,
    event_type: { type: 4, sub_type: 3 },
    IP: { source: '10.0.1.5', destination: '142.250.1.1', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000, destination_port: 443 } },
    source: { namespace: 'shop', pod_name: 'web-5d8f7c9b6-x2x9q', labels: ['k8s:app=web', 'k8s:tier=frontend'], workloads: [{ name: 'web', kind: 'Deployment' }] },
    destination: { labels: ['reserved:world'] },
    destination_names: ['www.google.com'],
  },
  env,
  'c',
);
const denied = normalizeFlow(
  {
    verdict: 'DROPPED',
    drop_reason_desc: 'POLICY_DENIED',
    traffic_direction: 'INGRESS',
    event_type: { type: 1, sub_type: 133 },
    IP: { source: '10.0.2.9', destination: '10.0.1.7', ipVersion: 'IPv4' },
    l4: { UDP: { source_port: 5353, destination_port: 53 } },
    source: { namespace: 'kube-system', pod_name: 'coredns-abc', labels: ['k8s:k8s-app=kube-dns'] },
    destination: { namespace: 'db', pod_name: 'postgres-0', labels: ['k8s:app=postgres'] },
    l7: { type: 'RESPONSE', http: { code: 503, method: 'GET' } },
  },
  env,
  'c',
);

const passes = (allow: FlowFilterSpec[], deny: FlowFilterSpec[] = []) => [web, denied].map((r) => new FlowFilters(allow, deny).pass(r));

describe('Hubble FlowFilter semantics', () => {
  it.each<[string, FlowFilterSpec[], FlowFilterSpec[], [boolean, boolean]]>([
    ['no filters keep everything', [], [], [true, true]],
    ['verdict', [{ verdict: ['DROPPED'] }], [], [false, true]],
    ['values inside a field are OR-ed', [{ verdict: ['DROPPED', 'FORWARDED'] }], [], [true, true]],
    ['fields inside a filter are AND-ed', [{ verdict: ['DROPPED'], traffic_direction: ['EGRESS'] }], [], [false, false]],
    ['filters of the allow list are OR-ed', [{ verdict: ['DROPPED'] }, { traffic_direction: ['EGRESS'] }], [], [true, true]],
    ['deny list removes matches', [], [{ destination_port: ['53'] }], [true, false]],
    ['allow then deny', [{ source_pod: ['shop/', 'kube-system/'] }], [{ verdict: ['DROPPED'] }], [true, false]],
    ['pod prefix in any namespace', [{ source_pod: ['web-'] }], [], [true, false]],
    ['pod prefix in a namespace', [{ source_pod: ['kube-system/core'] }], [], [false, true]],
    ['whole namespace', [{ destination_pod: ['db/'] }], [], [false, true]],
    ['label, any source prefix', [{ source_label: ['app=web'] }], [], [true, false]],
    ['label with source prefix', [{ source_label: ['k8s:k8s-app=kube-dns'] }], [], [false, true]],
    ['label selector: in, and', [{ source_label: ['app in (web, api), tier=frontend'] }], [], [true, false]],
    ['label selector: notin / absent', [{ source_label: ['app notin (web)'] }], [], [false, true]],
    ['label selector: !key', [{ destination_label: ['!app'] }], [], [true, false]],
    ['IP exact', [{ source_ip: ['10.0.2.9'] }], [], [false, true]],
    ['CIDR', [{ destination_ip: ['142.250.0.0/16'] }], [], [true, false]],
    ['FQDN wildcard', [{ destination_fqdn: ['*.google.com'] }], [], [true, false]],
    ['protocol is case-insensitive', [{ protocol: ['udp'] }], [], [false, true]],
    ['ports', [{ destination_port: ['443'], source_port: ['40000'] }], [], [true, false]],
    ['drop reason', [{ drop_reason_desc: ['POLICY_DENIED'] }], [], [false, true]],
    ['event type by number', [{ event_type: [{ type: 1 }] }], [], [false, true]],
    ['event type with sub type', [{ event_type: [{ type: 4, sub_type: 3 }] }], [], [true, false]],
    ['event type by name', [{ event_type: [{ type: 'trace' }] }], [], [true, false]],
    ['reply', [{ reply: [false] }], [], [true, false]],
    ['workload', [{ source_workload: [{ kind: 'Deployment' }] }], [], [true, false]],
    ['node name with wildcard', [{ node_name: ['aks-1/node-*'] }], [], [true, true]],
    ['HTTP status range', [{ http_status: ['5+'] }], [], [false, true]],
    ['uuid', [{ uuid: ['u-web'] }], [], [true, false]],
    ['IP version', [{ ip_version: ['ipv6'] }], [], [false, false]],
  ])('%s', (_name, allow, deny, expected) => {
    expect(passes(allow, deny)).toEqual(expected);
  });

  it('parses Kubernetes label selectors', () => {
    expect(parseSelector('a=b, c!=d, e in (x, y), f notin (z), g, !h')).toEqual([
      { key: 'a', op: 'eq', values: ['b'] },
      { key: 'c', op: 'neq', values: ['d'] },
      { key: 'e', op: 'in', values: ['x', 'y'] },
      { key: 'f', op: 'notin', values: ['z'] },
      { key: 'g', op: 'exists', values: [] },
      { key: 'h', op: 'notexists', values: [] },
    ]);
  });

  it('a bad CIDR is refused when the filters are built (at start, not per flow)', () => {
    expect(() => new FlowFilters([{ source_ip: ['10.0.0.0/33x'] }], [])).toThrow();
  });
});
