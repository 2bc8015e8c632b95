import { afterEach, describe, expect, it } from 'vitest';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { startService, type Running } from '../helpers/service.js';
import { createService } from '../../src/service.js';
import { StartupError } from '../../src/startup-error.js';

const ndjson = { 'content-type': 'application/x-ndjson' };
const line = (uuid: string, f: Record<string, unknown>) => ({ log: JSON.stringify({ flow: { time: '2026-01-01T00:00:00Z', uuid, ...f }, node_name: 'c/n' }) });

let svc: Running | null = null;
afterEach(async () => {
  await svc?.stop();
  svc = null;
});

describe('the enrich stage in the service', () => {
  it('filters, enriches and counts every outcome', async () => {
    svc = await startService({ filters: { denyList: [{ destination_port: ['53'] }] }, enrich: { environment: 'prod' } } as never);
    const body = jsonLinesBody([
      line('dns', { verdict: 'FORWARDED', l4: { UDP: { destination_port: 53 } } }),
      line('deny', { verdict: 'DROPPED', drop_reason_desc: 'POLICY_DENIED', traffic_direction: 'INGRESS', destination: { namespace: 'db', pod_name: 'postgres-0' }, IP: { source: '10.0.0.1', destination: '10.0.0.2' } }),
    ]);
    expect((await svc.post(body, ndjson)).status).toBe(200);
    const rows = await svc.rows('HubbleFlows');
    expect(rows.map((r) => r.Uuid)).toEqual(['deny']);
    expect(rows[0]).toMatchObject({ PolicyName: 'default-deny', PolicyNamespace: 'db', PolicyKind: 'DefaultDeny', DestinationWorkload: 'postgres', DestinationWorkloadKind: 'StatefulSet', SourceIpScope: 'private', Environment: 'prod' });
    expect(await svc.metric('hubble_adx_enrich_rows_total', { outcome: 'filtered' })).toBe(1);
    expect(await svc.metric('hubble_adx_enrich_rows_total', { outcome: 'kept' })).toBe(1);
  });

  it('aggregated rows are written when their window ends (and at shutdown)', async () => {
    svc = await startService({ aggregation: { enabled: true, windowSeconds: 1, keepIps: false } } as never);
    const body = jsonLinesBody([1, 2, 3].map((i) => line(`a${i}`, { verdict: 'FORWARDED', IP: { source: `10.0.0.${i}`, destination: '10.1.1.1' }, l4: { TCP: { destination_port: 80 } } })));
    await svc.post(body, ndjson);
    await new Promise((r) => setTimeout(r, 2200));
    const rows = await svc.rows('HubbleFlows');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ FlowCount: 3, FirstSeen: '2026-01-01T00:00:00Z', LastSeen: '2026-01-01T00:00:00Z', SourceIp: null });
    expect(await svc.metric('hubble_adx_enrich_rows_total', { outcome: 'aggregated' })).toBe(3);
    expect(await svc.metric('hubble_adx_enrich_rows_total', { outcome: 'aggregate_rows' })).toBe(1);
  });
});

describe('enrichment configuration is checked at start', () => {
  // Keys the loader checks are named by it; the rest by the component that reads them, when the
  // service is built (a StartupError naming the key: one line, exit 1).
  const problems = (env: Record<string, string>) => {
    try {
      createService(loadConfig({ env }), { logger: false, sink: { name: 'none' } as never });
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => p.key);
      if (err instanceof StartupError) return [err.key];
      throw err;
    }
    return [];
  };
  it('names the bad key', () => {
    expect(problems({ HUBBLE_ADX_FILTERS__DENY_LIST: '[{destination_prot: ["53"]}]' })).toEqual(['filters.denyList.0.destination_prot']);
    expect(problems({ HUBBLE_ADX_AGGREGATION__KEY: '[SourceNamespce]' })).toEqual(['aggregation.key']);
    expect(problems({ HUBBLE_ADX_ENRICH__PSEUDONYMIZE__ENABLED: 'true' })).toEqual(['enrich.pseudonymize.key']);
    expect(problems({ HUBBLE_ADX_FILTERS__ALLOW_LIST: '[{source_ip: ["10.0.0.0/99"]}]' })).toEqual(['filters']);
    expect(problems({ HUBBLE_ADX_ENRICH__NETWORKS: '[{name: vpn, cidrs: ["10.8.0.0/x"]}]' })).toEqual(['enrich.networks']);
  });
});
