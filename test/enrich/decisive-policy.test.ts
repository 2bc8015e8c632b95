import { describe, expect, it } from 'vitest';
import { decisivePolicy } from '../../src/enrich/index.js';
import { normalizeFlow } from '../../src/normalize/index.js';
import type { FlowRow } from '../../src/schema/index.js';

const env = { nodeName: 'n', time: null, lineTime: null, lineTimeSec: null };
const pol = (name: string, ns = 'shop', kind = 'CiliumNetworkPolicy') => ({ name, namespace: ns, kind });

function row(verdict: string, direction: string | null, code: number | null, attribution: Record<string, unknown>): FlowRow {
  return normalizeFlow(
    {
      verdict,
      ...(direction ? { traffic_direction: direction } : {}),
      ...(code ? { drop_reason_desc: code } : {}),
      source: { namespace: 'client-ns' },
      destination: { namespace: 'server-ns' },
      ...attribution,
    },
    env,
    'c',
  );
}

describe('the policy that decided a flow', () => {
  it.each([
    // verdict, direction, drop code, attribution, expected name/namespace/kind
    ['DROPPED', 'INGRESS', 181, { ingress_denied_by: [pol('deny-db')] }, ['deny-db', 'shop', 'CiliumNetworkPolicy']],
    ['DROPPED', 'EGRESS', 181, { egress_denied_by: [pol('deny-out')], ingress_denied_by: [pol('wrong')] }, ['deny-out', 'shop', 'CiliumNetworkPolicy']],
    ['DROPPED', 'INGRESS', 133, {}, ['default-deny', 'server-ns', 'DefaultDeny']],
    ['DROPPED', 'EGRESS', 133, {}, ['default-deny', 'client-ns', 'DefaultDeny']],
    ['DROPPED', null, 133, {}, ['default-deny', null, 'DefaultDeny']],
    ['DROPPED', 'INGRESS', 133, { ingress_denied_by: [pol('explicit', 'x', 'CiliumClusterwideNetworkPolicy')] }, ['explicit', 'x', 'CiliumClusterwideNetworkPolicy']],
    ['DROPPED', 'INGRESS', 181, {}, null], // explicit deny without attribution: no name is invented
    ['DROPPED', 'INGRESS', 134, {}, null], // not a policy drop
    ['DROPPED', null, 181, { egress_denied_by: [pol('only-egress')] }, ['only-egress', 'shop', 'CiliumNetworkPolicy']],
    ['FORWARDED', 'INGRESS', null, { ingress_allowed_by: [pol('allow-web'), pol('second')] }, ['allow-web', 'shop', 'CiliumNetworkPolicy']],
    ['FORWARDED', 'EGRESS', null, { ingress_allowed_by: [pol('in')], egress_allowed_by: [pol('out', 'default', 'NetworkPolicy')] }, ['out', 'default', 'NetworkPolicy']],
    ['FORWARDED', 'EGRESS', null, { ingress_allowed_by: [pol('in')] }, null],
    ['FORWARDED', null, null, { egress_allowed_by: [pol('out')] }, ['out', 'shop', 'CiliumNetworkPolicy']],
    ['FORWARDED', 'INGRESS', null, {}, null],
    ['AUDIT', 'INGRESS', null, { ingress_denied_by: [pol('would-deny')] }, ['would-deny', 'shop', 'CiliumNetworkPolicy']],
    ['AUDIT', 'INGRESS', null, { ingress_allowed_by: [pol('allows')] }, ['allows', 'shop', 'CiliumNetworkPolicy']],
    ['REDIRECTED', 'EGRESS', null, { egress_allowed_by: [pol('l7-proxy')] }, ['l7-proxy', 'shop', 'CiliumNetworkPolicy']],
  ] as const)('%s %s drop %s %j → %j', (verdict, direction, code, attribution, expected) => {
    const p = decisivePolicy(row(verdict, direction, code, attribution));
    expect(p === null ? null : [p.name, p.namespace, p.kind]).toEqual(expected);
  });

  it('over every combination: a policy drop always has an answer, an allowed flow never gets default-deny', () => {
    const verdicts = ['FORWARDED', 'DROPPED', 'AUDIT', 'REDIRECTED', 'ERROR'];
    const directions = ['INGRESS', 'EGRESS', null];
    const codes = [133, 181, 134, null];
    const attributions = [{}, { ingress_denied_by: [pol('di')] }, { egress_denied_by: [pol('de')] }, { ingress_allowed_by: [pol('ai')] }, { egress_allowed_by: [pol('ae')] }];
    let n = 0;
    for (const v of verdicts) for (const d of directions) for (const c of codes) for (const a of attributions) {
      const r = row(v, d, v === 'DROPPED' ? c : null, a);
      const p = decisivePolicy(r);
      n++;
      if (v === 'DROPPED' && c === 133) expect(p?.name).toBeTruthy();
      if (v !== 'DROPPED' && v !== 'AUDIT') expect(p?.name).not.toBe('default-deny');
      if (v === 'DROPPED' && p) expect(['di', 'de', 'default-deny']).toContain(p.name);
      if (v === 'FORWARDED' && p) expect(['ai', 'ae']).toContain(p.name);
    }
    expect(n).toBe(5 * 3 * 4 * 5);
  });
});
