import avsc from 'avsc';
import { describe, expect, it } from 'vitest';
import { normalizeFlow } from '../../src/normalize/index.js';
import type { FlowRow } from '../../src/schema/index.js';
import { encodeAvro } from '../../src/sink/kusto/encode-avro.js';

/** Decoded by avsc, an Avro implementation independent of the avro-js encoder under test. */
function decode(raw: Buffer): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const out: Record<string, unknown>[] = [];
    const decoder = new avsc.streams.BlockDecoder();
    decoder.on('data', (r: Record<string, unknown>) => out.push({ ...r }));
    decoder.on('error', reject);
    decoder.on('end', () => resolve(out));
    decoder.end(raw);
  });
}

const env = { nodeName: 'aks-1/node-a', time: null, lineTime: null, lineTimeSec: null };

describe('Avro encoding of rows', () => {
  it('writes plain row values into ["null", T] unions, converting datetimes, arrays and JSON columns', async () => {
    const row = normalizeFlow(
      {
        time: '2026-01-02T03:04:05.123456789Z',
        verdict: 'DROPPED',
        drop_reason: 133,
        source: { identity: 1234, labels: ['k8s:app=web'] },
        ingress_denied_by: [{ name: 'deny-all', namespace: 'shop', kind: 'CiliumNetworkPolicy', revision: '7' }],
        ethernet: { source: 'aa:bb' },
      },
      env,
      'aks-1',
    );
    const [out] = await decode(await encodeAvro('flows', [row]));
    expect(out).toMatchObject({
      TimeGenerated: Date.UTC(2026, 0, 2, 3, 4, 5, 123) * 1000 + 456,
      Verdict: 'DROPPED',
      DropReasonCode: 133,
      SourceIdentity: 1234,
      SourceLabels: ['k8s:app=web'],
      IngressDeniedBy: [{ Name: 'deny-all', Namespace: 'shop', Kind: 'CiliumNetworkPolicy', Revision: 7, Labels: null }],
      AdditionalFlowData: JSON.stringify({ ethernet: { source: 'aa:bb' } }),
      DestinationIp: null,
      FlowCount: 1,
    });
  });

  it('writes null for a value its column type cannot hold, and keeps the rest of the batch', async () => {
    const good = normalizeFlow({ verdict: 'FORWARDED' }, env, 'aks-1');
    const odd = { ...good, DropReasonCode: 2 ** 40, SourceIdentity: 2 ** 60, Encrypted: 'yes', SourceLabels: ['a', 5], TimeGenerated: 'not a time' } as unknown as FlowRow;
    const rows = await decode(await encodeAvro('flows', [odd, good]));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ DropReasonCode: null, SourceIdentity: null, Encrypted: null, SourceLabels: ['a', '5'], TimeGenerated: null, Verdict: 'FORWARDED' });
    expect(rows[1]).toMatchObject({ Verdict: 'FORWARDED' });
  });
});
