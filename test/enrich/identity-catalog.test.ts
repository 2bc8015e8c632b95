import { SCHEMA_VERSION } from '../../src/schema/index.js';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import { Enricher } from '../../src/enrich/index.js';
import { normalizeFlow } from '../../src/normalize/index.js';
import type { FlowRow } from '../../src/schema/index.js';

const env = { nodeName: 'aks-1/node-a', time: null, lineTime: null, lineTimeSec: null };
function enricher(overrides: Record<string, unknown> = {}) {
  const c = configSchema.parse(overrides);
  return new Enricher({ ...c, aggregation: { ...c.aggregation, key: c.aggregation.key as (keyof FlowRow)[] } });
}
const WEB = ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop'];
const DB = ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop'];
const flow = (extra: Record<string, unknown> = {}) =>
  normalizeFlow(
    {
      verdict: 'FORWARDED',
      source: { identity: 1001, namespace: 'shop', labels: [...WEB], pod_name: 'web-5d8f7c9b6-x2x9q' },
      destination: { identity: 1002, namespace: 'shop', labels: [...DB] },
      ...extra,
    },
    env,
    'aks-1',
  );

describe('identity catalog (enrich.endpointLabels)', () => {
  it('by default writes each identity once with its labels and takes them off the flow rows', () => {
    const e = enricher();
    const t0 = 1_800_000_000_000;
    const rows = [flow(), flow(), flow()];
    for (const r of rows) expect(e.process(r, t0)).toBe('kept');
    for (const r of rows) expect([r.SourceLabels, r.DestinationLabels]).toEqual([null, null]);
    // What was read from the labels before they left the row is still there.
    expect(rows[0]!.SourceLabelValues).toEqual({ app: 'web' });
    expect(e.takeIdentities()).toEqual([
      { TimeGenerated: new Date(t0).toISOString(), Cluster: 'aks-1', NodeName: 'node-a', Identity: 1001, Namespace: 'shop', Labels: WEB, ReceiverNode: null, RunId: null, SchemaVersion: SCHEMA_VERSION },
      { TimeGenerated: new Date(t0).toISOString(), Cluster: 'aks-1', NodeName: 'node-a', Identity: 1002, Namespace: 'shop', Labels: DB, ReceiverNode: null, RunId: null, SchemaVersion: SCHEMA_VERSION },
    ]);
    expect(e.takeIdentities()).toEqual([]);
  });

  it('writes an identity again after the refresh period, and at once when its labels change', () => {
    const e = enricher({ enrich: { identityRefreshSeconds: 600 } });
    const t0 = 1_800_000_000_000;
    e.process(flow(), t0);
    e.takeIdentities();
    e.process(flow(), t0 + 599_000);
    expect(e.takeIdentities()).toEqual([]);
    e.process(flow(), t0 + 600_000);
    expect(e.takeIdentities().map((r) => r.Identity)).toEqual([1001, 1002]);
    // Identity numbers are reused after garbage collection: new labels are news.
    e.process(flow({ destination: { identity: 1002, namespace: 'shop', labels: ['k8s:app=cache'] } }), t0 + 601_000);
    expect(e.takeIdentities()).toMatchObject([{ Identity: 1002, Labels: ['k8s:app=cache'] }]);
  });

  it('keys identities by observing node: node-local identities mean something only there', () => {
    const e = enricher();
    const local = { destination: { identity: 16777217, labels: ['cidr:10.0.0.0/8', 'reserved:world'] } };
    e.process(normalizeFlow({ ...local }, { ...env, nodeName: 'aks-1/node-a' }, 'aks-1'));
    e.process(normalizeFlow({ ...local }, { ...env, nodeName: 'aks-1/node-b' }, 'aks-1'));
    expect(e.takeIdentities().map((r) => `${r.NodeName}:${r.Identity}`)).toEqual(['node-a:16777217', 'node-b:16777217']);
  });

  it('rows: labels stay on every flow row and no identity rows are written; both: the two', () => {
    const rowsMode = enricher({ enrich: { endpointLabels: 'rows' } });
    const a = flow();
    rowsMode.process(a);
    expect(a.SourceLabels).toEqual(WEB);
    expect(rowsMode.takeIdentities()).toEqual([]);
    const both = enricher({ enrich: { endpointLabels: 'both' } });
    const b = flow();
    both.process(b);
    expect(b.DestinationLabels).toEqual(DB);
    expect(both.takeIdentities()).toHaveLength(2);
  });

  it('writes no identity for flows that are filtered or sampled out: nothing would reference it', () => {
    const e = enricher({ filters: { denyList: [{ source_pod: ['shop/'] }] } });
    expect(e.process(flow())).toBe('filtered');
    expect(e.takeIdentities()).toEqual([]);
  });

  it('what is read from labels follows the labels, even when an identity number comes back with others', () => {
    const e = enricher();
    const a = flow();
    const b = flow({ source: { identity: 1001, labels: ['k8s:app=api', 'k8s:io.cilium.k8s.policy.serviceaccount=api-sa'] } });
    const c = flow();
    for (const r of [a, b, c]) e.process(r);
    expect([a.SourceLabelValues, b.SourceLabelValues, c.SourceLabelValues]).toEqual([{ app: 'web' }, { app: 'api' }, { app: 'web' }]);
    expect([a.SourceServiceAccount, b.SourceServiceAccount]).toEqual([null, 'api-sa']);
  });

  it('filters still see the labels (they run before the labels leave the row)', () => {
    const e = enricher({ filters: { allowList: [{ source_label: ['k8s:app=web'] }] } });
    expect(e.process(flow())).toBe('kept');
    expect(e.process(flow({ source: { identity: 1003, labels: ['k8s:app=other'] } }))).toBe('filtered');
  });
});
