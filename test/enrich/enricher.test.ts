import { describe, expect, it } from 'vitest';
import { FlowGenerator } from '../support/generator.js';
import { configSchema } from '../../src/config/index.js';
import { Enricher, ipScope, workloadFromPodName } from '../../src/enrich/index.js';
import { normalizeFlow } from '../../src/normalize/index.js';
import type { FlowRow } from '../../src/schema/index.js';
import { hubbleFixtureLines } from '../support/fixtures.js';

const env = { nodeName: 'aks-1/node-a', time: null, lineTime: null, lineTimeSec: null };
function enricher(overrides: Record<string, unknown> = {}) {
  const c = configSchema.parse(overrides);
  return new Enricher({ ...c, aggregation: { ...c.aggregation, key: c.aggregation.key as (keyof FlowRow)[] } });
}
const flow = (f: Record<string, unknown>) => normalizeFlow(f, env, 'aks-1');

describe('entities, names and ownership', () => {
  it('names reserved identities and labels; the API server beats host', () => {
    const e = enricher();
    const r = flow({
      source: { identity: 1, labels: ['reserved:host'] },
      destination: { identity: 7, labels: ['reserved:host', 'reserved:kube-apiserver'] },
    });
    e.process(r);
    expect([r.SourceEntity, r.DestinationEntity]).toEqual(['host', 'kube-apiserver']);
    const w = flow({ source: { pod_name: 'a', cluster_name: 'aks-1' }, destination: { identity: 2, labels: ['reserved:world', 'fqdn:*.github.com', 'cidrgroup:io.cilium.policy.cidrgroupname/partners'] }, destination_names: ['api.github.com'] });
    e.process(w);
    expect([w.SourceEntity, w.DestinationEntity]).toEqual(['pod', 'world']);
    expect(w.DestinationFqdns).toEqual(['api.github.com', '*.github.com']);
    expect(w.DestinationCidrGroups).toEqual(['partners']);
    const remote = flow({ destination: { pod_name: 'x', cluster_name: 'aks-2' } });
    e.process(remote);
    expect(remote.DestinationEntity).toBe('cluster');
  });

  it('names every endpoint of the real fixture flows that has an identity', () => {
    const e = enricher();
    let named = 0;
    for (const { text } of hubbleFixtureLines()) {
      const rec = JSON.parse(text) as { flow?: Record<string, unknown>; node_name?: string };
      if (!rec.flow) continue;
      const r = normalizeFlow(rec.flow, { ...env, nodeName: rec.node_name ?? null }, 'c');
      const labels = (r.SourceLabels as string[] | null) ?? [];
      e.process(r);
      if (r.SourceIdentity !== null && r.SourceIdentity < 256) expect(r.SourceEntity).not.toBeNull();
      // The security identity decides: a host-network pod seen as reserved:world stays world.
      const reserved = labels.some((l) => l.startsWith('reserved:'));
      if (r.SourcePodName !== null && !reserved) expect(r.SourceEntity).toMatch(/^(pod|cluster)$/);
      if (r.SourceEntity) named++;
    }
    expect(named).toBeGreaterThan(1500);
  });

  it.each([
    ['web-5d8f7c9b6-x2x9q', { name: 'web', kind: 'Deployment' }],
    ['payments-api-7848d6c4d5-th9v2', { name: 'payments-api', kind: 'Deployment' }],
    ['postgres-0', { name: 'postgres', kind: 'StatefulSet' }],
    ['cilium-kx7p2', { name: 'cilium', kind: null }],
    ['xwing', null],
  ])('workload of pod %s', (pod, expected) => {
    expect(workloadFromPodName(pod)).toEqual(expected);
  });

  it('fills workload, service account and configured label values (pod label first, then namespace label)', () => {
    const e = enricher({ enrich: { labelKeys: ['team', 'app.kubernetes.io/name'] } });
    const r = flow({
      source: {
        pod_name: 'checkout-5d8f7c9b6-x2x9q',
        labels: ['k8s:app.kubernetes.io/name=checkout', 'k8s:io.cilium.k8s.policy.serviceaccount=checkout-sa', 'k8s:io.cilium.k8s.namespace.labels.team=payments', 'k8s:io.cilium.k8s.namespace.labels.app.kubernetes.io/name=ignored'],
      },
    });
    e.process(r);
    expect([r.SourceWorkload, r.SourceWorkloadKind, r.SourceServiceAccount]).toEqual(['checkout', 'Deployment', 'checkout-sa']);
    expect(r.SourceLabelValues).toEqual({ 'app.kubernetes.io/name': 'checkout', team: 'payments' });
  });
});

describe('IP context', () => {
  it.each([
    ['10.1.2.3', 'private'], ['172.20.0.1', 'private'], ['192.168.1.1', 'private'], ['8.8.8.8', 'public'], ['127.0.0.1', 'loopback'],
    ['169.254.169.254', 'link-local'], ['100.64.0.1', 'cgnat'], ['224.0.0.251', 'multicast'], ['0.0.0.0', 'unspecified'],
    ['fd00:10:244::1', 'private'], ['fe80::1', 'link-local'], ['ff02::2', 'multicast'], ['::1', 'loopback'], ['2001:4860:4860::8888', 'public'],
    ['::ffff:10.0.0.1', 'private'], ['not-an-ip', null],
  ])('%s is %s', (ip, scope) => {
    expect(ipScope(ip)).toBe(scope);
  });

  it('names configured networks and adds region and environment', () => {
    const e = enricher({ enrich: { networks: [{ name: 'corp-vpn', cidrs: ['10.8.0.0/16'] }, { name: 'dc', cidrs: ['192.168.0.0/16', 'fd12::/16'] }], region: 'westeurope', environment: 'prod' } });
    const r = flow({ IP: { source: '10.8.1.1', destination: 'fd12::5' } });
    e.process(r);
    expect([r.SourceNetworkName, r.DestinationNetworkName, r.Region, r.Environment]).toEqual(['corp-vpn', 'dc', 'westeurope', 'prod']);
  });
});

describe('pseudonymization', () => {
  const key = 'k'.repeat(40);
  it('replaces public IPs and URL queries with stable keyed tokens, and nothing else', () => {
    const e = enricher({ enrich: { pseudonymize: { enabled: true, key } } });
    const a = flow({ IP: { source: '10.0.0.1', destination: '8.8.8.8' }, l7: { http: { url: 'https://shop/cart?user=alice&id=7#top' } } });
    const b = flow({ IP: { source: '8.8.8.8', destination: '10.0.0.2' } });
    e.process(a);
    e.process(b);
    expect(a.SourceIp).toBe('10.0.0.1');
    expect(a.DestinationIp).toMatch(/^h:[0-9a-f]{32}$/);
    expect(b.SourceIp).toBe(a.DestinationIp); // joinable
    expect(a.HttpUrl).toMatch(/^https:\/\/shop\/cart\?h:[0-9a-f]{32}#top$/);
    expect(a.DestinationIpScope).toBe('public'); // scope is taken before the address is replaced
    const other = enricher({ enrich: { pseudonymize: { enabled: true, key: 'z'.repeat(40) } } });
    const c = flow({ IP: { destination: '8.8.8.8' } });
    other.process(c);
    expect(c.DestinationIp).not.toBe(a.DestinationIp); // another key, another token
  });
});

describe('sampling', () => {
  it('keeps about 1 in N allowed connections, whole in both directions, and never samples denied flows', () => {
    const e = enricher({ sampling: { allowedOneIn: 10 }, enrich: { decisivePolicy: false } });
    const gen = new FlowGenerator(3);
    let allowed = 0;
    let kept = 0;
    let denied = 0;
    for (const line of gen.lines(20_000)) {
      if (!line.startsWith('{"flow"')) continue;
      const rec = JSON.parse(line) as { flow: Record<string, unknown> };
      const r = normalizeFlow(rec.flow, env, 'c');
      const reverse = normalizeFlow({ ...rec.flow, IP: { source: (rec.flow.IP as { destination: string }).destination, destination: (rec.flow.IP as { source: string }).source }, l4: swapPorts(rec.flow.l4) }, env, 'c');
      const outcome = e.process(r);
      const back = e.process(reverse);
      expect(back).toBe(outcome);
      if (r.Verdict === 'DROPPED') {
        denied++;
        expect(outcome).toBe('kept');
        expect(r.SamplingWeight).toBe(1);
        continue;
      }
      allowed++;
      if (outcome === 'kept') {
        kept++;
        expect(r.SamplingWeight).toBe(10);
      }
    }
    expect(denied).toBeGreaterThan(1000);
    expect(kept / allowed).toBeGreaterThan(0.08);
    expect(kept / allowed).toBeLessThan(0.12);
  });
});

function swapPorts(l4: unknown): unknown {
  const [[proto, p]] = Object.entries(l4 as Record<string, Record<string, unknown>>) as [[string, Record<string, unknown>]];
  return { [proto]: { ...p, source_port: p.destination_port, destination_port: p.source_port } };
}

describe('aggregation', () => {
  /** As the processor does: what process() calls aggregated is folded with absorb(). */
  const through = (e: Enricher, r: FlowRow) => {
    const outcome = e.process(r);
    if (outcome === 'aggregated') e.absorb(r);
    return outcome;
  };

  it('collapses allowed flows by key, conserves FlowCount and the sampling weight apart, and keeps denied flows one by one', () => {
    const e = enricher({ aggregation: { enabled: true, windowSeconds: 1 }, sampling: { allowedOneIn: 4 } });
    const gen = new FlowGenerator(11);
    let inCount = 0;
    let folded = 0;
    const passed: FlowRow[] = [];
    for (const line of gen.lines(5000)) {
      if (!line.startsWith('{"flow"')) continue;
      const r = normalizeFlow((JSON.parse(line) as { flow: Record<string, unknown> }).flow, env, 'c');
      inCount += r.FlowCount ?? 1;
      const outcome = through(e, r);
      if (outcome === 'kept') passed.push(r);
      if (outcome === 'aggregated') folded++;
    }
    const aggregated = e.takeAggregated();
    expect(aggregated.length).toBeGreaterThan(0);
    expect(passed.every((r) => r.Verdict !== 'FORWARDED')).toBe(true);
    // Each aggregate says how many flow records it folded: what HubbleCoverage counts as kept.
    expect(aggregated.reduce((n, r) => n + (r.AggregatedFlows ?? 0), 0)).toBe(folded);
    // The sampling weight stays a weight (not folded into FlowCount): estimates are FlowCount * SamplingWeight.
    expect(aggregated.every((r) => r.SamplingWeight === 4)).toBe(true);
    const outCount = [...passed, ...aggregated].reduce((n, r) => n + (r.FlowCount ?? 1) * (r.SamplingWeight ?? 1), 0);
    // Sampling makes the total an estimate; aggregation itself must not change it: recount without sampling.
    const exact = enricher({ aggregation: { enabled: true, keepIps: false } });
    let exactIn = 0;
    const exactPassed: FlowRow[] = [];
    for (const line of new FlowGenerator(11).lines(5000)) {
      if (!line.startsWith('{"flow"')) continue;
      const r = normalizeFlow((JSON.parse(line) as { flow: Record<string, unknown> }).flow, env, 'c');
      exactIn += r.FlowCount ?? 1;
      if (through(exact, r) === 'kept') exactPassed.push(r);
    }
    const exactRows = [...exactPassed, ...exact.takeAggregated()];
    expect(exactRows.reduce((n, r) => n + (r.FlowCount ?? 1), 0)).toBe(exactIn);
    expect(exactRows.length).toBeLessThan(exactIn);
    expect(Math.abs(outCount - inCount) / inCount).toBeLessThan(0.15);
    for (const a of aggregated) {
      expect(a.FirstSeen! <= a.LastSeen!).toBe(true);
      expect(a.Uuid).toBeNull();
      expect(a.SourceIp).not.toBeNull(); // IPs kept by default
    }
  });

  it('keepIps: false drops the addresses from the key and the rows', () => {
    const e = enricher({ aggregation: { enabled: true, keepIps: false } });
    for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
      through(e, flow({ verdict: 'FORWARDED', time: '2026-01-01T00:00:00Z', IP: { source: ip, destination: '10.1.1.1' }, source: { namespace: 'a', pod_name: 'web-5d8f7c9b6-x2x9q' } }));
    }
    const rows = e.takeAggregated();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ FlowCount: 3, AggregatedFlows: 3, SourceIp: null, DestinationIp: null, SourceWorkload: 'web' });
  });

  it('which flows are aggregated depends on the flow alone, not on what the aggregator holds: room says when to take them', () => {
    const e = enricher({ aggregation: { enabled: true, maxKeys: 2 } });
    const rows = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((ip) => flow({ verdict: 'FORWARDED', time: '2026-01-01T00:00:00Z', IP: { source: ip, destination: '10.1.1.1' } }));
    expect(rows.map((r) => e.process(r))).toEqual(['aggregated', 'aggregated', 'aggregated']);
    e.absorb(rows[0]!);
    expect(e.aggregateRoom).toBe(1);
    e.absorb(rows[1]!);
    expect(e.aggregateRoom).toBe(0);
    expect(e.takeAggregated()).toHaveLength(2);
    expect(e.aggregateRoom).toBe(2);
  });
});

describe('deciding as the run that counted a record decided', () => {
  /** Outcome settings as a run writes them into the spool (config/outcome-settings.ts). */
  const settingsOf = (overrides: Record<string, unknown>) => {
    const c = configSchema.parse(overrides);
    return { filters: c.filters, sampling: c.sampling, aggregation: { ...c.aggregation, key: c.aggregation.key as (keyof FlowRow)[] }, enrich: { entities: c.enrich.entities, workloads: c.enrich.workloads } };
  };
  const publicFlows = () => Array.from({ length: 400 }, (_, i) => ({ verdict: 'FORWARDED', IP: { source: '10.0.0.1', destination: `8.8.${i % 200}.${i % 7}` }, l4: { TCP: { source_port: 30000 + i, destination_port: 443 } } }));

  it('which flows are sampled does not depend on the pseudonymization key: the same flows are kept with any key, or none', () => {
    const kept = (overrides: Record<string, unknown>) => publicFlows().map((f) => enricher(overrides).process(flow(f)));
    const plain = kept({ sampling: { allowedOneIn: 4 } });
    expect(plain.filter((o) => o === 'kept').length).toBeGreaterThan(50);
    expect(kept({ sampling: { allowedOneIn: 4 }, enrich: { pseudonymize: { enabled: true, key: 'k'.repeat(40) } } })).toEqual(plain);
    expect(kept({ sampling: { allowedOneIn: 4 }, enrich: { pseudonymize: { enabled: true, key: 'z'.repeat(40) } } })).toEqual(plain);
  });

  it('settings of an earlier run decide until told otherwise: its filters on the workloads it derived, its sampling, its aggregation; then the own ones again', () => {
    const e = enricher({ enrich: { workloads: true }, filters: { denyList: [{ destination_workload: [{ name: 'pg' }] }] }, aggregation: { enabled: true } });
    const toPg = () => flow({ verdict: 'FORWARDED', destination: { namespace: 'db', pod_name: 'pg-7d9f8c6b5-abcde' } });
    expect(e.process(toPg())).toBe('filtered');
    // The run that counted the backlog derived no workloads (so its filter never matched) and aggregated nothing.
    expect(e.decideWith(settingsOf({ enrich: { workloads: false }, filters: { denyList: [{ destination_workload: [{ name: 'pg' }] }] } }))).toBe(true);
    expect(e.process(toPg())).toBe('kept');
    expect(e.decideWith(null)).toBe(true);
    expect(e.process(toPg())).toBe('filtered');
  });

  it('aggregates folded under earlier settings are taken with the own ones, once', () => {
    const e = enricher();
    e.decideWith(settingsOf({ aggregation: { enabled: true } }));
    const f = flow({ verdict: 'FORWARDED', IP: { source: '10.0.0.1', destination: '10.0.0.2' } });
    expect(e.process(f)).toBe('aggregated');
    e.absorb(f);
    e.decideWith(null);
    expect(e.process(flow({ verdict: 'FORWARDED' }))).toBe('kept');
    expect(e.takeAggregated().map((r) => r.AggregatedFlows)).toEqual([1]);
    expect(e.takeAggregated()).toEqual([]);
  });

  it('settings this version cannot build (a filter it refuses) are not used: the own ones decide, and the caller is told', () => {
    const e = enricher();
    const bad = { ...settingsOf({}), filters: { allowList: [{ source_label: ['app=web,'] }], denyList: [] } };
    expect(e.decideWith(bad)).toBe(false);
    expect(e.process(flow({ verdict: 'FORWARDED' }))).toBe('kept');
  });
});
