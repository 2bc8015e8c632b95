/**
 * A fast-check generator of Fluent Bit bodies carrying Hubble exporter records with hostile keys and
 * values in every position: prototype keys, negative and huge numbers, NaN-ish strings, maps where
 * text belongs and the reverse, `toString`/`valueOf` traps (as JSON: `{"toString":1}`), deep and
 * wide values, long strings, unicode. Inside flow, lost_events and agent_event records; as the `log`
 * line of a Fluent Bit record, as a merged map, as CRI pieces; in msgpack, json and json_lines,
 * plain or gzipped. Shared by the property test and `npm run fuzz`.
 */
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { CONTENT_TYPE, msgpackBody } from './fluent-bit-bodies.js';

export type BodyFormat = 'msgpack' | 'json' | 'json_lines';

export interface HostileBody {
  format: BodyFormat;
  body: Buffer;
  headers: Record<string, string>;
  /** Fluent Bit records in it. */
  records: number;
  /** What it is made of, for a report. */
  describe: string;
}

type Json = unknown;
type Obj = Record<string, unknown>;

/** A key set as an own property: `obj['__proto__'] = v` would set the prototype instead. */
function setOwn(obj: Obj, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A deep copy that keeps `__proto__` keys as keys. */
function clone(v: Json): Json {
  if (Array.isArray(v)) return v.map(clone);
  if (typeof v === 'object' && v !== null) {
    const out: Obj = {};
    for (const k of Object.keys(v)) setOwn(out, k, clone((v as Obj)[k]));
    return out;
  }
  return v;
}

export const PROTOTYPE_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

const FIELD_NAMES = [
  'flow', 'lost_events', 'agent_event', 'node_name', 'time', 'uuid', 'verdict', 'l4', 'TCP', 'UDP', 'ICMPv4', 'source_port', 'destination_port', 'flags',
  'identity', 'labels', 'namespace', 'pod_name', 'workloads', 'name', 'kind', 'IP', 'source', 'destination', 'aggregate', 'ingress_flow_count', 'l7', 'http',
  'dns', 'code', 'num_events_lost', 'log', 'message', 'logtag', 'stream', 'kubernetes', 'date', 'toString', 'valueOf', 'toJSON', 'hasOwnProperty',
];

const key: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('__proto__', '__proto__', 'constructor', 'prototype') },
  { weight: 3, arbitrary: fc.constantFrom(...FIELD_NAMES) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12, unit: 'grapheme' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 3000 }).map((n) => 'k'.repeat(n)) },
);

const number: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(-1, -0, 0, 1, 65535, 65536, 255, 256, 999, 1000, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 1e308, -1e308, 0.5, -10000),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  // msgpack carries NaN and the infinities; JSON writes them as null.
  fc.double(),
);

const nanish: fc.Arbitrary<string> = fc.constantFrom('NaN', 'Infinity', '-Infinity', '-1', '1e309', '1e3', '0x10', ' 12 ', '', '-0', '4294967296', '99999999999999999999', '1.5', 'null', 'true', '[object Object]');

const text: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40, unit: 'grapheme' }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 60_000 }).map((n) => 'y'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_KEYS) },
);

/** Objects that answer String(), templates and arithmetic with a throw or a surprise, as JSON can carry them. */
const trap: fc.Arbitrary<Obj> = fc.constantFrom<Obj>({ toString: 1 }, { valueOf: 1 }, { toString: 1, valueOf: 1 }, { toJSON: 1 }, { toString: { toString: 1 } }, {}, { length: -1 }).map((o) => clone(o) as Obj);

const scalar: fc.Arbitrary<Json> = fc.oneof(number, nanish, text, fc.boolean(), fc.constant(null));

/** A value `depth` levels deep: past limits.maxJsonDepth (64), short of the encoders' 100. */
const deep: fc.Arbitrary<Json> = fc.tuple(fc.integer({ min: 2, max: 80 }), fc.boolean()).map(([d, arrays]) => {
  let v: Json = 1;
  for (let i = 0; i < d; i++) v = arrays ? [v] : { a: v };
  return v;
});

const wide: fc.Arbitrary<Json> = fc.oneof(
  fc.integer({ min: 100, max: 5000 }).map((n) => Array.from({ length: n }, (_, i) => i)),
  fc.integer({ min: 100, max: 2000 }).map((n) => {
    const o: Obj = {};
    for (let i = 0; i < n; i++) o[`k${i}`] = i;
    return o;
  }),
);

const { value } = fc.letrec<{ value: Json; map: Obj }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, trap, tie('map'), fc.array(tie('value'), { maxLength: 4 }), deep, wide),
  map: fc.array(fc.tuple(key, tie('value')), { maxLength: 4 }).map((entries) => {
    const o: Obj = {};
    for (const [k, v] of entries) setOwn(o, k, v);
    return o;
  }),
}));

export const hostileValue: fc.Arbitrary<Json> = value;

/** A flow as Hubble's exporter writes it (Cilium 1.16+), every part present so that every part can be spoiled. */
function baseFlow(uuid: string): Obj {
  return {
    time: '2026-11-20T08:00:00.123456789Z', uuid, verdict: 'FORWARDED', Type: 'L3_L4', node_name: 'c1/n1', traffic_direction: 'EGRESS', is_reply: false,
    drop_reason_desc: 'DROP_REASON_UNKNOWN', trace_observation_point: 'TO_STACK', event_type: { type: 4, sub_type: 3 }, Summary: 'TCP Flags: SYN',
    IP: { source: '10.0.0.1', destination: '10.0.0.2', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000, destination_port: 443, flags: { SYN: true } } },
    source: { identity: 1234, namespace: 'shop', pod_name: 'web-7d4b9c-abcde', labels: ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop'], workloads: [{ name: 'web', kind: 'Deployment' }] },
    destination: { identity: 2, labels: ['reserved:world'] },
    destination_names: ['example.com'], source_service: { name: 'web', namespace: 'shop' },
    l7: { type: 'REQUEST', latency_ns: '1000', http: { code: 200, method: 'GET', url: '/x?q=1' }, dns: { query: 'example.com.', ips: ['1.2.3.4'], rcode: 0, ttl: 30, qtypes: ['A'] } },
    egress_allowed_by: [{ name: 'allow-web', namespace: 'shop', kind: 'CiliumNetworkPolicy', revision: '7', labels: ['k8s:a=b'] }],
    aggregate: { ingress_flow_count: 3, egress_flow_count: 1 }, interface: { name: 'eth0', index: 2 }, policy_log: ['x'], node_labels: ['kubernetes.io/os=linux'],
  };
}

const PAYLOADS: Record<'flow' | 'lost_events' | 'agent_event', (uuid: string) => Obj> = {
  flow: baseFlow,
  lost_events: () => ({ source: 'PERF_EVENT_RING_BUFFER', num_events_lost: '10', cpu: 1 }),
  agent_event: (uuid) => ({ type: 'ENDPOINT_REGENERATE_SUCCESS', endpoint_regenerate: { id: 1, labels: ['k8s:a=b'] }, uuid }),
};

/** The maps of a record, by path: where a key can be added or a value spoiled. */
function mapPaths(v: Json, at: string[] = []): string[][] {
  if (Array.isArray(v)) return v.flatMap((x, i) => mapPaths(x, [...at, String(i)]));
  if (typeof v !== 'object' || v === null) return [];
  return [at, ...Object.keys(v).flatMap((k) => mapPaths((v as Obj)[k], [...at, k]))];
}

/**
 * One spoiling, at one of the record's own maps (picked before any spoiling, so that every part of
 * the record is as likely as any other): add a key (`key`), or put `value` in place of an entry.
 */
interface Edit {
  at: number;
  key: string | null;
  entry: number;
  value: Json;
}

/** A key on a map that holds maps: what walks a path when the code takes keys for path segments. */
const keyedMap: fc.Arbitrary<Json> = fc.tuple(key, value).map(([k, v]) => {
  const o: Obj = {};
  setOwn(o, k, v);
  setOwn(o, 'polluted', 1);
  return o;
});

const edit: fc.Arbitrary<Edit> = fc.record({
  at: fc.nat(),
  // fast-check's option: nil once in `freq`.
  key: fc.option(key, { freq: 2 }),
  entry: fc.nat(),
  value: fc.oneof({ weight: 4, arbitrary: value }, { weight: 1, arbitrary: keyedMap }, { weight: 2, arbitrary: trap }, { weight: 2, arbitrary: number }),
});

function applyEdits(root: Obj, edits: readonly Edit[]): Obj {
  const maps = mapPaths(root);
  for (const e of edits) {
    const path = maps[e.at % maps.length]!;
    const target = path.reduce<Json>((node, seg) => (typeof node === 'object' && node !== null ? (node as Obj)[seg] : undefined), root);
    // An earlier spoiling may have put something else there: then this one has no map to spoil.
    if (typeof target !== 'object' || target === null || Array.isArray(target)) continue;
    const keys = Object.keys(target);
    const k = e.key ?? (keys.length > 0 ? keys[e.entry % keys.length]! : 'added');
    setOwn(target as Obj, k, clone(e.value));
  }
  return root;
}

/** How the exporter record reaches hubble-adx inside a Fluent Bit record. */
type Placement = 'log' | 'merged' | 'cri';

interface RecordPlan {
  kind: keyof typeof PAYLOADS;
  placement: Placement;
  /** Spoilings of the exporter record (payload, node_name, time, extra keys). */
  inner: Edit[];
  /** Spoilings of the Fluent Bit record around it (stream, kubernetes, logtag, date, extra keys). */
  outer: Edit[];
  pieces: number;
  /** A record that is no map at all (Format json and json_lines carry anything). */
  notAMap: Json | null;
}

const recordPlan: fc.Arbitrary<RecordPlan> = fc.record({
  kind: fc.constantFrom('flow', 'flow', 'flow', 'lost_events', 'agent_event'),
  placement: fc.constantFrom<Placement>('log', 'log', 'merged', 'cri'),
  inner: fc.array(edit, { minLength: 1, maxLength: 8 }),
  outer: fc.array(edit, { maxLength: 4 }),
  pieces: fc.integer({ min: 2, max: 4 }),
  notAMap: fc.oneof({ weight: 29, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: scalar }),
});

let seq = 0;

function fluentBitRecords(plan: RecordPlan): Obj[] {
  const uuid = `pbt-${process.pid}-${seq++}`;
  const exporter = applyEdits({ [plan.kind]: PAYLOADS[plan.kind](uuid), node_name: 'c1/n1', time: '2026-11-20T08:00:00Z' }, plan.inner);
  const around = { stream: 'stdout', time: '2026-11-20T08:00:01.000000000Z', kubernetes: { namespace_name: 'kube-system', pod_name: 'cilium-x1', container_name: 'cilium-agent', host: 'n1' } };
  if (plan.placement === 'merged') return [applyEdits({ ...exporter, ...around }, plan.outer)];
  const line = JSON.stringify(exporter);
  if (plan.placement === 'log') return [applyEdits({ ...around, _p: 'F', log: line }, plan.outer)];
  // CRI pieces (regex parser): `P` pieces then the `F` one, the spoiling on the first.
  const size = Math.ceil(line.length / plan.pieces);
  const out: Obj[] = [];
  for (let i = 0; i < plan.pieces; i++) {
    const rec: Obj = { ...around, logtag: i === plan.pieces - 1 ? 'F' : 'P', message: line.slice(i * size, (i + 1) * size) };
    out.push(i === 0 ? applyEdits(rec, plan.outer) : rec);
  }
  return out;
}

export const hostileBody: fc.Arbitrary<HostileBody> = fc
  .record({
    format: fc.constantFrom<BodyFormat>('msgpack', 'json', 'json_lines'),
    gzip: fc.boolean(),
    plans: fc.array(recordPlan, { minLength: 1, maxLength: 8 }),
  })
  .map(({ format, gzip, plans }) => {
    const records: Obj[] = [];
    for (const p of plans) {
      if (p.notAMap !== null && format !== 'msgpack') records.push(p.notAMap as Obj);
      else records.push(...fluentBitRecords(p));
    }
    const raw = format === 'msgpack' ? msgpackBody(records) : jsonText(format, records);
    const describe = `${format}${gzip ? '+gzip' : ''}: ${plans.map((p) => `${p.kind}/${p.placement}/${p.inner.length + p.outer.length} edits`).join(', ')}`;
    return {
      format,
      body: gzip ? gzipSync(raw) : raw,
      headers: { 'content-type': CONTENT_TYPE[format], ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
      records: records.length,
      describe,
      // A counterexample is reported by what it is made of and how it starts, not byte by byte.
      [fc.toStringMethod]: () => `${describe}; ${raw.length} bytes before compression: ${JSON.stringify(raw.subarray(0, 2000).toString(format === 'msgpack' ? 'base64' : 'utf8'))}`,
    };
  });

/** Format json (an array) or json_lines, as Fluent Bit lays them out (its date key first); a record that is no map as it is. */
function jsonText(format: 'json' | 'json_lines', records: unknown[]): Buffer {
  const texts = records.map((r, i) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return JSON.stringify(r);
    const rec: Obj = { date: 1_795_161_600 + i + 0.5 };
    for (const k of Object.keys(r)) setOwn(rec, k, (r as Obj)[k]);
    return JSON.stringify(rec);
  });
  return Buffer.from(format === 'json' ? `[${texts.join(',')}]` : `${texts.join('\n')}\n`);
}
