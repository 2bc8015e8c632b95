import { describe, expect, it } from 'vitest';
import { functionDefinitions } from '../../src/schema/index.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { startService } from '../helpers/service.js';

const ndjson = { 'content-type': 'application/x-ndjson' };
const flow = (uuid: string, nodeName: string, labels: string[]) =>
  JSON.stringify({ flow: { uuid, time: '2026-01-01T00:00:00Z', verdict: 'FORWARDED', source: { identity: 4242, namespace: 'shop', labels }, destination: { identity: 2, labels: ['reserved:world'] } }, node_name: nodeName });

describe('attribution: every row says which instance received it, whatever the record says of itself', () => {
  it('a record that claims another node writes identity rows under the node that received it; the labels join keys on that node', async () => {
    const a = await startService({ cluster: 'c', coverage: { nodeName: 'node-a' } });
    const b = await startService({ cluster: 'c', coverage: { nodeName: 'node-b' } });
    try {
      // Sent to node-a's instance, claiming to be node-b's, with labels of the sender's choice.
      expect((await a.post(jsonLinesBody([{ log: flow('forged', 'c/node-b', ['k8s:app=attacker']) }]), ndjson)).status).toBe(200);
      expect((await b.post(jsonLinesBody([{ log: flow('real', 'c/node-b', ['k8s:app=payments']) }]), ndjson)).status).toBe(200);
      const forged = (await a.rows('HubbleIdentities')).filter((r) => r.Identity === 4242);
      const real = (await b.rows('HubbleIdentities')).filter((r) => r.Identity === 4242);
      expect(forged).toMatchObject([{ NodeName: 'node-b', ReceiverNode: 'node-a', Labels: ['k8s:app=attacker'] }]);
      expect(real).toMatchObject([{ NodeName: 'node-b', ReceiverNode: 'node-b', Labels: ['k8s:app=payments'] }]);
      expect((await b.rows('HubbleFlows')).map((r) => [r.Uuid, r.ReceiverNode])).toEqual([['real', 'node-b']]);
      expect((await a.rows('HubbleFlows')).map((r) => [r.Uuid, r.ReceiverNode])).toEqual([['forged', 'node-a']]);
      // The join analysts use matches identities to flows on the receiving node, never on NodeName alone.
      const labels = functionDefinitions().find((f) => f.name === 'HubbleFlowsWithLabels')!.body;
      expect(labels).toMatch(/Receiver = coalesce\(ReceiverNode, NodeName\)/);
      expect(labels).toMatch(/on Cluster, Receiver, SourceIdentity/);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
