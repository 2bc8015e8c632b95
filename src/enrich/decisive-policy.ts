import type { FlowRow } from '../schema/index.js';

export interface PolicyRef {
  name: string | null;
  namespace: string | null;
  kind: string | null;
}

const POLICY_DENIED = 133;

interface Ref {
  Name?: unknown;
  Namespace?: unknown;
  Kind?: unknown;
}

function first(list: unknown): PolicyRef | null {
  if (!Array.isArray(list) || list.length === 0) return null;
  const p = list[0] as Ref;
  const s = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : null);
  return { name: s(p.Name), namespace: s(p.Namespace), kind: s(p.Kind) };
}

/**
 * The policy that decided a flow. Drops (and policy-audit verdicts) are decided by the first policy
 * of the flow's direction in `*_denied_by`, other verdicts by the first of `*_allowed_by`; with no
 * direction, ingress is tried before egress. A policy drop (133) no policy claims is the endpoint's
 * default deny, so "denied by what?" always has an answer: `default-deny`, in the namespace of the
 * endpoint the policy applies to. An explicit deny (181) keeps the named policy, or none.
 */
export function decisivePolicy(row: FlowRow): PolicyRef | null {
  const egress = row.TrafficDirection === 'EGRESS';
  const ingress = row.TrafficDirection === 'INGRESS';
  const denying = row.Verdict === 'DROPPED' || row.Verdict === 'AUDIT';
  if (denying) {
    const ref = egress ? first(row.EgressDeniedBy) : ingress ? first(row.IngressDeniedBy) : (first(row.IngressDeniedBy) ?? first(row.EgressDeniedBy));
    if (ref) return ref;
    if (row.DropReasonCode === POLICY_DENIED) {
      const ns = egress ? row.SourceNamespace : ingress ? row.DestinationNamespace : null;
      return { name: 'default-deny', namespace: ns, kind: 'DefaultDeny' };
    }
    if (row.Verdict === 'DROPPED') return null;
  }
  return egress ? first(row.EgressAllowedBy) : ingress ? first(row.IngressAllowedBy) : (first(row.IngressAllowedBy) ?? first(row.EgressAllowedBy));
}
