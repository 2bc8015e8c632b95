/**
 * Keys named `__proto__`, `constructor` and `prototype` anywhere in a record, in every body format:
 * no request changes Object.prototype, and each such key arrives as data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMsgpack } from '../../src/receive/decode-msgpack.js';
import { startService, type Running } from '../helpers/service.js';
import { CONTENT_TYPE, jsonBody, jsonLinesBody, msgpackBody } from '../support/fluent-bit-bodies.js';

const KEYS = ['__proto__', 'constructor', 'prototype'] as const;
const prototypeNames = () => Object.getOwnPropertyNames(Object.prototype).sort();

/**
 * A flow line with `key` in every position normalize walks, as JSON text: an object literal with a
 * `__proto__` key would set a prototype instead of making a key.
 */
function flowText(uuid: string, key: string): string {
  const v = `{"polluted":"${uuid}"}`;
  const flow =
    `{"uuid":"${uuid}","verdict":"FORWARDED","time":"2026-01-01T00:00:00Z","${key}":${v},` +
    `"IP":{"source":"10.0.0.1","${key}":${v}},"l4":{"${key}":${v},"TCP":{"destination_port":443,"${key}":${v},"flags":{"SYN":true,"${key}":${v}}}},` +
    `"source":{"identity":1,"${key}":${v}},"destination_service":{"name":"s","${key}":${v}},"event_type":{"type":4,"${key}":${v}},` +
    `"l7":{"${key}":${v},"http":{"code":200,"${key}":${v}},"dns":{"query":"q","${key}":${v}}},"interface":{"name":"eth0","${key}":${v}},` +
    `"egress_allowed_by":[{"name":"p","${key}":${v}}],"aggregate":{"${key}":${v}}}`;
  return `{"flow":${flow},"node_name":"c1/n1","${key}":${v}}`;
}

/** Where each key must be found in AdditionalFlowData. */
const PATHS = [[], ['IP'], ['l4'], ['l4', 'TCP'], ['l4', 'TCP', 'flags'], ['source'], ['destination_service'], ['event_type'], ['l7'], ['l7', 'http'], ['l7', 'dns'], ['interface'], ['egress_allowed_by', '0']];

/** A Fluent Bit record carrying the line, with the key at its own top level and in its kubernetes map. */
const recordText = (line: string, key: string) => `{"log":${JSON.stringify(line)},"${key}":{"polluted":1},"kubernetes":{"pod_name":"cilium-1","${key}":{"polluted":1}}}`;

function ownAt(v: unknown, path: readonly string[]): unknown {
  let node = v;
  for (const seg of path) {
    if (typeof node !== 'object' || node === null || !Object.prototype.hasOwnProperty.call(node, seg)) return undefined;
    node = (node as Record<string, unknown>)[seg];
  }
  return node;
}

describe('the msgpack decoder keeps prototype keys as keys', () => {
  it('a `__proto__` key is an own key of a map without a prototype, distinct from `__proto_`', () => {
    const record = JSON.parse('{"log":"x","__proto__":{"a":1},"__proto_":2,"constructor":3,"nested":{"__proto__":[{"__proto__":4}]}}') as Record<string, unknown>;
    const decoded = decodeMsgpack(msgpackBody([record]), { maxItems: 10, maxValues: 1000, maxEventBytes: 1 << 20 });
    if ('tooMany' in decoded) throw new Error('refused');
    const rec = decoded.records[0]!.record;
    expect(Object.getPrototypeOf(rec)).toBeNull();
    expect(ownAt(rec, ['__proto__', 'a'])).toBe(1);
    expect(ownAt(rec, ['__proto_'])).toBe(2);
    expect(ownAt(rec, ['constructor'])).toBe(3);
    expect(ownAt(rec, ['nested', '__proto__', '0', '__proto__'])).toBe(4);
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });

  it('a `__proto__` key deep in the last of many records is found as well; the name inside a string changes nothing', () => {
    const plain = Array.from({ length: 50 }, (_, i) => ({ log: `line ${i} mentions "__proto__" in its text` }));
    const last = JSON.parse('{"log":"x","k":[1,{"a":[{"__proto__":{"b":5}}]}]}') as Record<string, unknown>;
    const decoded = decodeMsgpack(msgpackBody([...plain, last]), { maxItems: 100, maxValues: 10_000, maxEventBytes: 1 << 20 });
    if ('tooMany' in decoded) throw new Error('refused');
    expect(decoded.records).toHaveLength(51);
    expect(decoded.records[3]!.record.log).toBe('line 3 mentions "__proto__" in its text');
    const rec = decoded.records[50]!.record;
    expect(ownAt(rec, ['k', '1', 'a', '0', '__proto__', 'b'])).toBe(5);
    expect(ownAt(rec, ['k', '1', 'a', '0', '__proto_'])).toBeUndefined();
  });
});

describe('no request can change Object.prototype (the service in this process)', () => {
  let svc: Running;
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(() => svc.stop());

  const formats: { name: string; encode: (records: Record<string, unknown>[]) => Buffer; type: string }[] = [
    { name: 'msgpack', encode: (r) => msgpackBody(r), type: CONTENT_TYPE.msgpack },
    { name: 'json', encode: (r) => jsonBody(r), type: CONTENT_TYPE.json },
    { name: 'json_lines', encode: (r) => jsonLinesBody(r), type: CONTENT_TYPE.json_lines },
  ];

  for (const f of formats) {
    it(`${f.name}: prototype keys in the record, the merged map, the exporter record and every part of the flow are data`, async () => {
      const before = prototypeNames();
      const records: Record<string, unknown>[] = [];
      for (const key of KEYS) {
        // As a log line, and as a map the kubernetes filter merged (Merge_Log) into the record.
        records.push(JSON.parse(recordText(flowText(`${f.name}-line-${key}`, key), key)) as Record<string, unknown>);
        const merged = JSON.parse(flowText(`${f.name}-merged-${key}`, key)) as Record<string, unknown>;
        records.push({ ...merged, stream: 'stdout' });
        records.push({ log: JSON.stringify({ lost_events: JSON.parse(`{"source":1,"num_events_lost":2,"${key}":{"polluted":1}}`), node_name: 'c1/n1' }) });
        records.push({ log: JSON.stringify({ agent_event: JSON.parse(`{"type":"AGENT_EVENT_UNKNOWN","${key}":{"polluted":1}}`), node_name: 'c1/n1' }) });
      }
      const res = await svc.post(f.encode(records), { 'content-type': f.type });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ flows: 6, events: 6, deadLettered: 0 });
      expect(prototypeNames()).toEqual(before);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();

      const rows = await svc.rows('HubbleFlows');
      for (const key of KEYS) {
        for (const how of ['line', 'merged']) {
          const uuid = `${f.name}-${how}-${key}`;
          const row = rows.find((r) => r.Uuid === uuid);
          expect(row, uuid).toBeDefined();
          expect(row).toMatchObject({ Protocol: 'TCP', DestinationPort: 443, SourceIdentity: 1, HttpStatus: 200, DnsQuery: 'q' });
          for (const path of PATHS) expect(ownAt(row!.AdditionalFlowData, [...path, key, 'polluted']), `${uuid}: ${[...path, key].join('.')}`).toBe(uuid);
        }
      }
      // prom-client refuses every labelled metric once Object.prototype has a property: it still answers.
      const metrics = await fetch(`${svc.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await svc.metric('hubble_adx_hubble_lost_events_total', { source: 'PERF_EVENT_RING_BUFFER', node: 'n1' })).toBeGreaterThan(0);
    });
  }
});
