import { describe, expect, it } from 'vitest';
import { normalizeFlow } from '../../src/normalize/index.js';

import type { Envelope } from '../../src/normalize/index.js';

const env: Envelope = { nodeName: null, time: null, lineTime: null, lineTimeSec: null };
const norm = (flow: Record<string, unknown>, e: Partial<Envelope> = {}) => normalizeFlow(flow, { ...env, ...e }, 'cfg-cluster');

describe('flow normalization', () => {
  it('splits an AKS node_name "cluster/node" into Cluster and NodeName', () => {
    const r = norm({ node_name: 'aks-prod/aks-nodepool1-000000' });
    expect([r.Cluster, r.NodeName]).toEqual(['aks-prod', 'aks-nodepool1-000000']);
  });

  it('uses the configured cluster when node_name has no prefix, and the envelope node when the flow has none', () => {
    expect([norm({}, { nodeName: 'k8s1' }).Cluster, norm({}, { nodeName: 'k8s1' }).NodeName]).toEqual(['cfg-cluster', 'k8s1']);
  });

  it('takes the flow time, else the exporter record time, else the CRI line time, else the Fluent Bit time', () => {
    expect(norm({ time: '2025-01-01T00:00:00.123456789Z' }, { time: '2020-01-01T00:00:00Z' }).TimeGenerated).toBe('2025-01-01T00:00:00.123456789Z');
    expect(norm({}, { time: '2020-01-01T00:00:00Z', lineTime: '2021-01-01T00:00:00Z' }).TimeGenerated).toBe('2020-01-01T00:00:00Z');
    expect(norm({}, { lineTime: '2021-01-01T00:00:00.5Z' }).TimeGenerated).toBe('2021-01-01T00:00:00.5Z');
    expect(norm({}, { lineTimeSec: 1_700_000_000.25 }).TimeGenerated).toBe('2023-11-14T22:13:20.250000000Z');
    expect(norm({ time: 'garbage' }, { lineTimeSec: 0 }).TimeGenerated).toBe('1970-01-01T00:00:00.000000000Z');
  });

  it('translates enums sent as numbers, and keeps unknown numbers as text', () => {
    const r = norm({ verdict: 2, drop_reason_desc: 181, traffic_direction: 1, trace_observation_point: 101, Type: 1, trace_reason: '1', auth_type: 1, IP: { ipVersion: 2 } });
    expect(r).toMatchObject({ Verdict: 'DROPPED', DropReason: 'POLICY_DENY', DropReasonCode: 181, TrafficDirection: 'INGRESS', TraceObservationPoint: 'TO_ENDPOINT', FlowType: 'L3_L4', TraceReason: 'NEW', AuthType: 'SPIRE', IpVersion: 'IPv6' });
    expect(norm({ verdict: 99 }).Verdict).toBe('99');
  });

  it('names the event type and policy match type as hubble observe does', () => {
    expect(norm({ event_type: { type: 5 }, policy_match_type: 2 })).toMatchObject({ EventType: 'policy-verdict', EventSubType: 0, PolicyMatchType: 'L3-L4' });
    expect(norm({ event_type: { type: 129 } }).EventType).toBe('l7');
    expect(norm({ event_type: { type: 4, sub_type: 3 } })).toMatchObject({ EventType: 'trace', EventSubType: 3 });
  });

  it('derives the drop code from drop_reason_desc, the deprecated drop_reason, or a drop event sub_type', () => {
    expect(norm({ verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED' }).DropReasonCode).toBe(133);
    expect(norm({ verdict: 'DROPPED', drop_reason: 133 })).toMatchObject({ DropReasonCode: 133, DropReason: 'POLICY_DENIED' });
    expect(norm({ verdict: 'DROPPED', event_type: { type: 1, sub_type: 181 } })).toMatchObject({ DropReasonCode: 181, DropReason: 'POLICY_DENY' });
    expect(norm({ verdict: 'FORWARDED', event_type: { type: 4, sub_type: 3 } }).DropReasonCode).toBeNull();
  });

  it('IsReply is null when Hubble did not say, and the deprecated reply only ever says yes', () => {
    expect(norm({}).IsReply).toBeNull();
    expect(norm({ is_reply: false }).IsReply).toBe(false);
    expect(norm({ reply: true }).IsReply).toBe(true);
    const r = norm({ reply: false });
    expect(r.IsReply).toBeNull();
    expect(r.AdditionalFlowData).toEqual({ reply: false });
  });

  it('reads TCP ports and flags in header order', () => {
    const r = norm({ l4: { TCP: { source_port: 44916, destination_port: 80, flags: { ACK: true, SYN: true } } } });
    expect(r).toMatchObject({ Protocol: 'TCP', SourcePort: 44916, DestinationPort: 80, TcpFlags: 'SYN,ACK', IcmpType: null });
  });

  it('an empty ICMP object is type 0 code 0 (protojson omits zeros)', () => {
    expect(norm({ l4: { ICMPv4: {} } })).toMatchObject({ Protocol: 'ICMPv4', IcmpType: 0, IcmpCode: 0, SourcePort: null });
    expect(norm({ l4: { ICMPv6: { type: 133 } } })).toMatchObject({ Protocol: 'ICMPv6', IcmpType: 133, IcmpCode: 0 });
  });

  it('keeps protocols without port columns whole (VRRP, IGMP)', () => {
    const r = norm({ l4: { IGMP: { type: 22, group_address: '239.1.1.1' } } });
    expect(r.Protocol).toBe('IGMP');
    expect(r.AdditionalFlowData).toEqual({ l4: { IGMP: { type: 22, group_address: '239.1.1.1' } } });
  });

  it('maps endpoints, the first workload, services and names', () => {
    const r = norm({
      source: { ID: 7, identity: 16781, namespace: 'shop', pod_name: 'web-5d8f7-abcde', cluster_name: 'c1', labels: ['k8s:app=web'], workloads: [{ name: 'web', kind: 'Deployment' }, { name: 'x', kind: 'Job' }] },
      destination: { identity: 2, labels: ['reserved:world'] },
      destination_service: { name: 'api', namespace: 'shop' },
      destination_names: ['example.com'],
    });
    expect(r).toMatchObject({
      SourceIdentity: 16781, SourceNamespace: 'shop', SourcePodName: 'web-5d8f7-abcde', SourceClusterName: 'c1',
      SourceWorkload: 'web', SourceWorkloadKind: 'Deployment', SourceLabels: ['k8s:app=web'],
      DestinationIdentity: 2, DestinationLabels: ['reserved:world'], DestinationServiceName: 'api',
      DestinationServiceNamespace: 'shop', DestinationNames: ['example.com'],
    });
    expect(r.AdditionalFlowData).toEqual({ source: { ID: 7, workloads: [{ name: 'web', kind: 'Deployment' }, { name: 'x', kind: 'Job' }] } });
  });

  it('maps L7 HTTP and DNS, 64-bit strings as numbers, rcode 0 when omitted', () => {
    const http = norm({ l7: { type: 'RESPONSE', latency_ns: '1234567', http: { code: 503, method: 'GET', url: 'http://a/b?c', protocol: 'HTTP/1.1', headers: [{ key: 'x', value: 'y' }] } } });
    expect(http).toMatchObject({ L7Type: 'RESPONSE', L7LatencyNs: 1_234_567, HttpStatus: 503, HttpMethod: 'GET', HttpUrl: 'http://a/b?c', HttpProtocol: 'HTTP/1.1' });
    expect(http.AdditionalFlowData).toEqual({ l7: { http: { headers: [{ key: 'x', value: 'y' }] } } });
    const dns = norm({ l7: { type: 'REQUEST', dns: { query: 'example.com.', qtypes: ['A'], ttl: 4294967295, ips: ['1.2.3.4'] } } });
    expect(dns).toMatchObject({ DnsQuery: 'example.com.', DnsRcode: 0, DnsQtypes: ['A'], DnsTtl: 4294967295, DnsIps: ['1.2.3.4'] });
  });

  it('keeps a policy field Cilium may add later at its own path', () => {
    const r = norm({ egress_denied_by: [{ name: 'p', tier: 'security' }] });
    expect(r.EgressDeniedBy).toEqual([{ Name: 'p', Namespace: null, Kind: null, Revision: null, Labels: null }]);
    expect(r.AdditionalFlowData).toEqual({ egress_denied_by: { '0': { tier: 'security' } } });
  });

  it('renames policy references and keeps their labels', () => {
    const r = norm({
      verdict: 'DROPPED',
      ingress_denied_by: [{ name: 'deny-all', namespace: 'shop', kind: 'CiliumNetworkPolicy', revision: '12', labels: ['k8s:io.cilium.k8s.policy.name=deny-all'] }],
      egress_allowed_by: [{ name: 'allow-dns', kind: 'CiliumClusterwideNetworkPolicy' }],
    });
    expect(r.IngressDeniedBy).toEqual([{ Name: 'deny-all', Namespace: 'shop', Kind: 'CiliumNetworkPolicy', Revision: 12, Labels: ['k8s:io.cilium.k8s.policy.name=deny-all'] }]);
    expect(r.EgressAllowedBy).toEqual([{ Name: 'allow-dns', Namespace: null, Kind: 'CiliumClusterwideNetworkPolicy', Revision: null, Labels: null }]);
  });

  it('counts an aggregated flow as the sum of its counts and keeps the aggregate', () => {
    const r = norm({ aggregate: { ingress_flow_count: 3, egress_flow_count: '4' } });
    expect(r.FlowCount).toBe(7);
    expect(r.AdditionalFlowData).toEqual({ aggregate: { ingress_flow_count: 3, egress_flow_count: '4' } });
    expect(norm({}).FlowCount).toBe(1);
  });
});
