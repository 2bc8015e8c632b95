/**
 * Request bodies an attacker on the node could send to the receiver, one builder per class of
 * attack. Shared by the hostile-input tests and `npm run fuzz`.
 */
import { gzipSync } from 'node:zlib';
import { CONTENT_TYPE, jsonLinesBody, msgpackBody } from './fluent-bit-bodies.js';

export interface HostileRequest {
  name: string;
  body: Buffer;
  headers: Record<string, string>;
}

const ndjson = { 'content-type': CONTENT_TYPE.json_lines };

export function flowLine(uuid: string, extra: Record<string, unknown> = {}, nodeName = 'c1/n1'): string {
  return JSON.stringify({ flow: { time: new Date().toISOString(), uuid, verdict: 'FORWARDED', ...extra }, node_name: nodeName });
}

/** `{"a":{"a":...1...}}`, `depth` objects deep, as text (building it as a value would overflow). */
export function deepObjectText(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** A flow line with an unknown field nested `depth` levels deep: parses, but cannot be re-serialized. */
export function poisonFlowLine(uuid: string, depth = 5000): string {
  const head = flowLine(uuid);
  return head.replace('"verdict":"FORWARDED"', `"verdict":"FORWARDED","future_field":${deepObjectText(depth)}`);
}

export function poisonPill(uuid = 'poison-1', depth = 5000): HostileRequest {
  return { name: `poison pill (flow field nested ${depth} deep)`, body: Buffer.from(JSON.stringify({ log: poisonFlowLine(uuid, depth) }) + '\n'), headers: ndjson };
}

export function deepJsonLine(depth: number): HostileRequest {
  return { name: `json_lines line nested ${depth} deep`, body: Buffer.from('['.repeat(depth) + ']'.repeat(depth) + '\n'), headers: ndjson };
}

export function deepJsonArray(depth: number): HostileRequest {
  return { name: `Format json array nested ${depth} deep`, body: Buffer.from('['.repeat(depth) + ']'.repeat(depth)), headers: { 'content-type': CONTENT_TYPE.json } };
}

/** A small gzip body of many `{}` records: `inflated` bytes once decompressed. */
export function gzipEmptyRecords(inflated: number): HostileRequest {
  return { name: `gzip of ${inflated} bytes of {}`, body: gzipSync(Buffer.alloc(inflated, '{}\n')), headers: { ...ndjson, 'content-encoding': 'gzip' } };
}

/** A raw snappy block whose header declares `declared` bytes and that holds nothing. */
export function snappyLiar(declared = 1 << 20): HostileRequest {
  const header: number[] = [];
  for (let v = declared; ; v = Math.floor(v / 128)) {
    if (v < 128) {
      header.push(v);
      break;
    }
    header.push((v % 128) | 0x80);
  }
  return { name: `${header.length}-byte snappy body declaring ${declared} bytes`, body: Buffer.from(header), headers: { 'content-type': CONTENT_TYPE.msgpack, 'content-encoding': 'snappy' } };
}

/** A 10-byte zstd frame with no content size whose window descriptor asks for about 1.9 GB. */
export function zstdWindowBomb(): HostileRequest {
  const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (20 << 3) | 7, 0x03 | (16 << 3), 0x00, 0x00, 0x7b]);
  return { name: '10-byte zstd frame declaring a 1.9 GB window', body: frame, headers: { ...ndjson, 'content-encoding': 'zstd' } };
}

/** A single-segment zstd frame declaring a 2 GB content size. */
export function zstdContentBomb(): HostileRequest {
  const size = Buffer.alloc(8);
  size.writeUInt32LE(2 ** 31, 0);
  const frame = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]), size, Buffer.from([0x03 | (16 << 3), 0x00, 0x00, 0x7b])]);
  return { name: 'zstd frame declaring 2 GB of content', body: frame, headers: { ...ndjson, 'content-encoding': 'zstd' } };
}

/** One flow with a string field of `bytes` characters, gzipped (so that it passes maxBodyBytes). */
export function hugeStringFlow(bytes: number): HostileRequest {
  const line = flowLine('huge-1', { Summary: 'x'.repeat(bytes) });
  return { name: `one flow with a ${bytes}-character string`, body: gzipSync(jsonLinesBody([{ log: line }])), headers: { ...ndjson, 'content-encoding': 'gzip' } };
}

/** `n` flows whose endpoints each have a new identity with `labels` long labels. */
export function newIdentities(seq: number, n: number, labels = 40): HostileRequest {
  const records = [];
  for (let i = 0; i < n; i++) {
    const id = 1_000_000 + seq * n + i;
    const ls = Array.from({ length: labels }, (_, j) => `k8s:attacker.example/label-${j}=${'v'.repeat(40)}-${id}`);
    records.push({ log: flowLine(`id-${id}`, { source: { identity: id, labels: ls }, destination: { identity: id + 1, labels: ls } }) });
  }
  return { name: `${n} flows with new identities`, body: gzipSync(jsonLinesBody(records)), headers: { ...ndjson, 'content-encoding': 'gzip' } };
}

/** CRI partial pieces (regex parser: `logtag: P`) of `n` lines that never get their final piece. */
export function unfinishedPartials(seq: number, n: number, pieceBytes = 16 * 1024): HostileRequest {
  const piece = '{"flow":' + 'x'.repeat(pieceBytes - 8);
  const records = Array.from({ length: n }, (_, i) => ({ message: piece, logtag: 'P', stream: 'stdout', kubernetes: { namespace_name: 'kube-system', pod_name: `fake-${seq}-${i}`, container_name: 'cilium-agent' } }));
  return { name: `${n} partial pieces that never finish`, body: gzipSync(msgpackBody(records)), headers: { 'content-type': CONTENT_TYPE.msgpack, 'content-encoding': 'gzip' } };
}

/** lost_events records each naming a new node and source. */
export function lostEventsNewLabels(seq: number, n: number): HostileRequest {
  const records = Array.from({ length: n }, (_, i) => ({
    log: JSON.stringify({ lost_events: { source: `SOURCE_${seq}_${i}`, num_events_lost: '3', cpu: 1 }, node_name: `c1/node-${seq}-${i}-${'n'.repeat(100)}`, time: new Date().toISOString() }),
  }));
  return { name: `${n} lost_events with new node names`, body: jsonLinesBody(records), headers: ndjson };
}

/** `n` lines that look like exporter records but are not JSON: each one a dead letter. */
export function garbageFlows(n: number): HostileRequest {
  const lines = Array.from({ length: n }, (_, i) => `{"log":"{\\"flow\\":{broken ${i}"}`);
  return { name: `${n} broken exporter lines`, body: Buffer.from(lines.join('\n') + '\n'), headers: ndjson };
}

/** Nested msgpack array16 headers each declaring 65,535 elements: decoders preallocate every level. */
export function msgpackNestedArrays(depth = 1000): HostileRequest {
  const body = Buffer.alloc(depth * 3);
  for (let i = 0; i < depth; i++) body.set([0xdc, 0xff, 0xff], i * 3);
  return { name: `${body.length}-byte msgpack body of ${depth} nested array headers`, body, headers: { 'content-type': CONTENT_TYPE.msgpack } };
}

/** One json_lines record holding `n` empty objects: a few bytes each as text, tens in memory. */
export function manyEmptyObjects(n: number): HostileRequest {
  return { name: `one record of ${n} empty objects`, body: Buffer.from(`{"log":"x","a":[${'{},'.repeat(n - 1)}{}]}\n`), headers: ndjson };
}

/** A small gzip body of `inflated` one-byte msgpack values: millions of top-level values. */
export function gzipTinyMsgpackValues(inflated: number): HostileRequest {
  return { name: `gzip of ${inflated} one-byte msgpack values`, body: gzipSync(Buffer.alloc(inflated, 0x01)), headers: { 'content-type': CONTENT_TYPE.msgpack, 'content-encoding': 'gzip' } };
}

/** One zstd frame with an 8 MiB window: a raw block holding `first`, then `blocks` one-byte RLE blocks of '\n'. */
export function slowZstd(first: Buffer, blocks: number): Buffer {
  // Frame header: no content size, not single segment, window descriptor 0x68 = 2^23 bytes.
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x68])];
  const raw = Buffer.alloc(3);
  raw.writeUIntLE(first.length << 3, 0, 3); // raw block (type 0), not last
  parts.push(raw, first);
  for (let i = 0; i < blocks; i++) parts.push(Buffer.from([i === blocks - 1 ? 0x0b : 0x0a, 0, 0, 0x0a])); // RLE block of one '\n'
  return Buffer.concat(parts);
}
