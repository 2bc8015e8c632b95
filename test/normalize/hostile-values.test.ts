import { describe, expect, it } from 'vitest';
import { InvalidValue, normalizeEvent, normalizeFlow, type Envelope } from '../../src/normalize/index.js';
import { dataMap, isMap } from '../../src/json-values.js';

const env: Envelope = { nodeName: null, time: null, lineTime: null, lineTimeSec: null };
/** A flow as the decoder hands it over: parsed from its JSON text, so `__proto__` is an own key. */
const norm = (json: string, e: Partial<Envelope> = {}) => normalizeFlow(JSON.parse(json) as Record<string, unknown>, { ...env, ...e }, 'c');
const ownKeys = () => Object.getOwnPropertyNames(Object.prototype).sort();
const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'];

/** A value at a path of AdditionalFlowData, own keys only (nothing inherited). */
function own(v: unknown, path: string[]): unknown {
  let node = v;
  for (const seg of path) {
    if (typeof node !== 'object' || node === null || !Object.prototype.hasOwnProperty.call(node, seg)) return undefined;
    node = (node as Record<string, unknown>)[seg];
  }
  return node;
}

describe('isMap: record maps are plain objects, never a prototype', () => {
  it('takes what JSON.parse and the decoders make, and maps without a prototype', () => {
    expect(isMap(JSON.parse('{"a":1}'))).toBe(true);
    expect(isMap(dataMap())).toBe(true);
  });

  it('refuses Object.prototype, arrays, buffers and objects of a class', () => {
    for (const v of [Object.prototype, [], Buffer.from('x'), new Date(0), new Map(), null, 'x']) expect(isMap(v)).toBe(false);
  });
});

describe('prototype keys in a flow are data, never a path', () => {
  // Every place where normalize walks into a map of the record and keeps what no column takes.
  const positions: { where: string; flow: (k: string) => string; path: (k: string) => string[] }[] = [
    { where: 'top level', flow: (k) => `{"${k}":{"polluted":1}}`, path: (k) => [k] },
    { where: 'l4 protocol', flow: (k) => `{"l4":{"${k}":{"polluted":1}}}`, path: (k) => ['l4', k, 'polluted'] },
    { where: 'a field of l4.TCP', flow: (k) => `{"l4":{"TCP":{"${k}":{"polluted":1}}}}`, path: (k) => ['l4', 'TCP', k] },
    { where: 'TCP flags', flow: (k) => `{"l4":{"TCP":{"flags":{"SYN":true,"${k}":{"polluted":1}}}}}`, path: (k) => ['l4', 'TCP', 'flags', k] },
    { where: 'event_type', flow: (k) => `{"event_type":{"type":4,"${k}":{"polluted":1}}}`, path: (k) => ['event_type', k] },
    { where: 'IP', flow: (k) => `{"IP":{"source":"10.0.0.1","${k}":{"polluted":1}}}`, path: (k) => ['IP', k] },
    { where: 'l7', flow: (k) => `{"l7":{"${k}":{"polluted":1}}}`, path: (k) => ['l7', k] },
    { where: 'l7.http', flow: (k) => `{"l7":{"http":{"${k}":{"polluted":1}}}}`, path: (k) => ['l7', 'http', k] },
    { where: 'l7.dns', flow: (k) => `{"l7":{"dns":{"${k}":{"polluted":1}}}}`, path: (k) => ['l7', 'dns', k] },
    { where: 'interface', flow: (k) => `{"interface":{"${k}":{"polluted":1}}}`, path: (k) => ['interface', k] },
    { where: 'source', flow: (k) => `{"source":{"${k}":{"polluted":1}}}`, path: (k) => ['source', k] },
    { where: 'destination_service', flow: (k) => `{"destination_service":{"${k}":{"polluted":1}}}`, path: (k) => ['destination_service', k] },
    { where: 'a policy reference', flow: (k) => `{"egress_allowed_by":[{"name":"p","${k}":{"polluted":1}}]}`, path: (k) => ['egress_allowed_by', '0', k] },
  ];

  for (const p of positions) {
    it.each(PROTOTYPE_KEYS)(`${p.where}: "%s" is kept at its own path and Object.prototype is untouched`, (key) => {
      const before = ownKeys();
      const row = norm(p.flow(key));
      expect(ownKeys()).toEqual(before);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(own(row.AdditionalFlowData, p.path(key))).toBeDefined();
      // Round trip through the JSON a sink writes: the key is still there, as data.
      expect(own(JSON.parse(JSON.stringify(row.AdditionalFlowData)), p.path(key))).toBeDefined();
    });
  }

  it('a protocol named __proto__ is the row\'s Protocol, its ports read as any other\'s', () => {
    const row = norm('{"l4":{"__proto__":{"source_port":1,"destination_port":2}}}');
    expect(row).toMatchObject({ Protocol: '__proto__', SourcePort: 1, DestinationPort: 2 });
  });

  it('AdditionalFlowData and its maps have no prototype', () => {
    const row = norm('{"l4":{"TCP":{"x":1}},"unknown":2}');
    expect(Object.getPrototypeOf(row.AdditionalFlowData)).toBeNull();
    expect(Object.getPrototypeOf(own(row.AdditionalFlowData, ['l4', 'TCP']))).toBeNull();
  });
});

describe('numbers of a record are checked where they are read: a value that cannot be is a dead letter naming its field', () => {
  const invalid: [string, string][] = [
    ['{"l4":{"TCP":{"source_port":-1}}}', 'flow.l4.TCP.source_port'],
    ['{"l4":{"UDP":{"destination_port":65536}}}', 'flow.l4.UDP.destination_port'],
    ['{"l4":{"TCP":{"source_port":1.5}}}', 'flow.l4.TCP.source_port'],
    ['{"l4":{"TCP":{"source_port":"NaN"}}}', 'flow.l4.TCP.source_port'],
    ['{"l4":{"TCP":{"source_port":"1e3"}}}', 'flow.l4.TCP.source_port'],
    ['{"l4":{"TCP":{"source_port":{"toString":1}}}}', 'flow.l4.TCP.source_port'],
    ['{"l4":{"ICMPv4":{"type":256}}}', 'flow.l4.ICMPv4.type'],
    ['{"source":{"identity":-5}}', 'flow.source.identity'],
    ['{"destination":{"identity":"99999999999999999999"}}', 'flow.destination.identity'],
    ['{"destination":{"identity":true}}', 'flow.destination.identity'],
    ['{"proxy_port":1e300}', 'flow.proxy_port'],
    ['{"drop_reason":-133}', 'flow.drop_reason'],
    ['{"event_type":{"type":-1}}', 'flow.event_type.type'],
    ['{"event_type":{"type":4,"sub_type":[1]}}', 'flow.event_type.sub_type'],
    ['{"l7":{"latency_ns":"-1"}}', 'flow.l7.latency_ns'],
    ['{"l7":{"http":{"code":1000}}}', 'flow.l7.http.code'],
    ['{"l7":{"dns":{"ttl":4294967296}}}', 'flow.l7.dns.ttl'],
    ['{"l7":{"dns":{"rcode":-3}}}', 'flow.l7.dns.rcode'],
    ['{"ingress_allowed_by":[{"name":"p","revision":-2}]}', 'flow.ingress_allowed_by.revision'],
    ['{"aggregate":{"ingress_flow_count":-10}}', 'flow.aggregate.ingress_flow_count'],
    ['{"aggregate":{"ingress_flow_count":4294967296}}', 'flow.aggregate.ingress_flow_count'],
  ];
  it.each(invalid)('%s: InvalidValue naming %s', (json, field) => {
    let err: unknown;
    try {
      norm(json);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidValue);
    expect((err as InvalidValue).reason).toBe('invalid_value');
    expect((err as InvalidValue).field).toBe(field);
    expect((err as Error).message.startsWith(field)).toBe(true);
  });

  it('protojson\'s decimal strings and the largest values each field holds are taken', () => {
    const row = norm('{"l4":{"TCP":{"source_port":"65535","destination_port":0}},"source":{"identity":"4294967295"},"l7":{"latency_ns":"9007199254740991"}}');
    expect(row).toMatchObject({ SourcePort: 65535, DestinationPort: 0, SourceIdentity: 4294967295, L7LatencyNs: 9007199254740991 });
  });

  it('one row stands for at most 2^32 - 1 flows, however many counts an aggregate carries', () => {
    expect(norm('{"aggregate":{"ingress_flow_count":4294967295}}').FlowCount).toBe(4294967295);
    expect(() => norm('{"aggregate":{"ingress_flow_count":4294967295,"egress_flow_count":1}}')).toThrow(InvalidValue);
    expect(() => norm(`{"aggregate":{${Array.from({ length: 3000 }, (_, i) => `"c${i}_count":3000000`).join(',')}}}`)).toThrow(/flow\.aggregate counts add up to/);
  });

  it('a lost_events count that cannot be one is refused; a real one is taken', () => {
    const lost = (n: unknown) => normalizeEvent('lost_events', { source: 'HUBBLE_RING_BUFFER', num_events_lost: n }, env, 'c');
    expect(lost('10000').NumEventsLost).toBe(10000);
    for (const bad of [-10000, '-1', 1.5, 'NaN', {}, [3], 2 ** 40]) expect(() => lost(bad)).toThrow(InvalidValue);
    expect(() => lost(-10000)).toThrow(/^lost_events\.num_events_lost /);
  });

  it('a Fluent Bit time no date can hold falls back to the receive time instead of throwing', () => {
    for (const t of [1e300, -1, Number.NaN, 253_402_300_800]) {
      const row = normalizeFlow({}, { ...env, lineTimeSec: t }, 'c');
      expect(Math.abs(Date.parse(row.TimeGenerated!) - Date.now())).toBeLessThan(5000);
    }
  });
});

describe('strings of a record are strings: a value of another type stays out of its column and is kept as data', () => {
  it('a map or list where text belongs is kept at its path, the column null', () => {
    const row = norm('{"uuid":{"toString":1},"verdict":["FORWARDED"],"IP":{"source":{"valueOf":1}},"source":{"namespace":{"a":1},"pod_name":"web-1"},"l7":{"http":{"url":[1,2]}},"is_reply":"maybe"}');
    expect(row).toMatchObject({ Uuid: null, Verdict: null, SourceIp: null, SourceNamespace: null, SourcePodName: 'web-1', HttpUrl: null, IsReply: null });
    const extra = row.AdditionalFlowData;
    expect(own(extra, ['uuid'])).toEqual({ toString: 1 });
    expect(own(extra, ['verdict'])).toEqual(['FORWARDED']);
    expect(own(extra, ['IP', 'source'])).toEqual({ valueOf: 1 });
    expect(own(extra, ['source', 'namespace'])).toEqual({ a: 1 });
    expect(own(extra, ['l7', 'http', 'url'])).toEqual([1, 2]);
    expect(own(extra, ['is_reply'])).toBe('maybe');
  });

  it('a list of labels or names holding anything but strings is kept whole as data, not in its column', () => {
    const row = norm('{"source":{"labels":["k8s:app=a",{"toString":1}]},"destination_names":[1],"l7":{"dns":{"ips":[null]}},"egress_allowed_by":[{"name":"p","labels":[{}]}]}');
    expect(row).toMatchObject({ SourceLabels: null, DestinationNames: null, DnsIps: null });
    expect((row.EgressAllowedBy as Record<string, unknown>[])[0]).toMatchObject({ Name: 'p', Labels: null });
    expect(own(row.AdditionalFlowData, ['source', 'labels'])).toEqual(['k8s:app=a', { toString: 1 }]);
    expect(own(row.AdditionalFlowData, ['egress_allowed_by', '0', 'labels'])).toEqual([{}]);
  });

  it('a workload whose name is not text keeps the list whole', () => {
    const row = norm('{"source":{"workloads":[{"name":{"toString":1},"kind":"Deployment"}]}}');
    expect(row.SourceWorkload).toBeNull();
    expect(own(row.AdditionalFlowData, ['source', 'workloads'])).toEqual([{ name: { toString: 1 }, kind: 'Deployment' }]);
  });
});
