/**
 * Mutation fuzzing of the receiver: real Fluent Bit bodies (the 4.2.8 captures and generated
 * bodies of every format and compression) and the hostile bodies, mutated with a seeded generator,
 * posted to the service started as the image runs it. It reports statuses, crashes, hangs, peak RSS
 * and dead-letter rows per request. Bounded in bodies and in time.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { spawnService, type Child } from './child-service.js';
import { containerNodeOptions } from './container-node-options.js';
import { fluentBitCaptures } from './fixtures.js';
import { CONTENT_TYPE, criRecord, jsonBody, jsonLinesBody, jsonStreamBody, msgpackBody, snappyRaw } from './fluent-bit-bodies.js';
import { FlowGenerator, mulberry32 } from './generator.js';
import {
  deepJsonArray, deepJsonLine, flowLine, garbageFlows, gzipEmptyRecords, gzipTinyMsgpackValues, lostEventsNewLabels, manyEmptyObjects, msgpackNestedArrays, newIdentities, poisonPill, snappyLiar,
  unfinishedPartials, zstdContentBomb, zstdWindowBomb, type HostileRequest,
} from './hostile-bodies.js';

export interface FuzzOptions {
  bodies: number;
  maxSeconds: number;
  seed: number;
  concurrency: number;
  /** Per-request deadline: a request still open after it counts as a hang. */
  hangMs: number;
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface FuzzReport {
  bodies: number;
  seconds: number;
  statuses: Record<string, number>;
  crashes: number;
  hangs: number;
  unexpected5xx: number;
  p99Ms: number;
  peakRssMiB: number;
  maxDeadLetterRowsPerRequest: number;
  deadLetterRows: number;
  /** A valid flow posted after the run reached the sink. */
  deliveredAfter: boolean;
}

function seedBodies(): HostileRequest[] {
  // The captures' own Host, Content-Length and Connection describe the original request, not a mutated one.
  const own = new Set(['host', 'content-length', 'connection', 'transfer-encoding']);
  const out: HostileRequest[] = fluentBitCaptures().map((c) => ({
    name: c.name,
    body: c.body,
    headers: Object.fromEntries(Object.entries(c.headers).filter(([k]) => !own.has(k.toLowerCase()))),
  }));
  const records = new FlowGenerator(7).lines(40).map((l) => criRecord(l));
  out.push(
    { name: 'msgpack', body: msgpackBody(records), headers: { 'content-type': CONTENT_TYPE.msgpack } },
    { name: 'msgpack+gzip', body: gzipSync(msgpackBody(records)), headers: { 'content-type': CONTENT_TYPE.msgpack, 'content-encoding': 'gzip' } },
    { name: 'json', body: jsonBody(records), headers: { 'content-type': CONTENT_TYPE.json } },
    { name: 'json_stream+snappy', body: snappyRaw(jsonStreamBody(records)), headers: { 'content-type': CONTENT_TYPE.json_stream, 'content-encoding': 'snappy' } },
    { name: 'json_lines', body: jsonLinesBody(records), headers: { 'content-type': CONTENT_TYPE.json_lines } },
    poisonPill('fuzz-poison', 3000), deepJsonLine(20_000), deepJsonArray(20_000), gzipEmptyRecords(2 * 1024 * 1024), snappyLiar(), zstdWindowBomb(),
    zstdContentBomb(), newIdentities(0, 50), unfinishedPartials(0, 20), lostEventsNewLabels(0, 50), garbageFlows(2000),
    msgpackNestedArrays(500), gzipTinyMsgpackValues(1024 * 1024), manyEmptyObjects(300_000),
  );
  return out;
}

const ENCODINGS = [undefined, 'gzip', 'zstd', 'snappy', 'identity', 'br', 'x-gzip'];
const TYPES = [CONTENT_TYPE.msgpack, CONTENT_TYPE.json, CONTENT_TYPE.json_lines, 'text/plain', ';', 'application/json; charset=utf-8'];

function mutate(base: HostileRequest, other: HostileRequest, r: () => number): HostileRequest {
  let body = Buffer.from(base.body);
  const headers = { ...base.headers };
  const steps = 1 + Math.floor(r() * 3);
  for (let s = 0; s < steps; s++) {
    const at = Math.floor(r() * Math.max(1, body.length));
    switch (Math.floor(r() * 9)) {
      case 0: // flip bits
        for (let i = 0; i < 1 + r() * 8 && body.length > 0; i++) {
          const k = Math.floor(r() * body.length);
          body[k] = body[k]! ^ (1 << Math.floor(r() * 8));
        }
        break;
      case 1: // truncate
        body = body.subarray(0, at);
        break;
      case 2: // insert random bytes
        body = Buffer.concat([body.subarray(0, at), Buffer.from(Array.from({ length: 1 + Math.floor(r() * 64) }, () => Math.floor(r() * 256))), body.subarray(at)]);
        break;
      case 3: // splice with another body
        body = Buffer.concat([body.subarray(0, at), other.body.subarray(Math.floor(r() * other.body.length))]);
        break;
      case 4: // duplicate a slice
        body = Buffer.concat([body, body.subarray(at, at + Math.floor(r() * 4096))]);
        break;
      case 5: // interesting bytes: msgpack/JSON markers, huge lengths
        for (let i = 0; i < 4; i++) body[Math.floor(r() * body.length)] = [0xdd, 0xdf, 0xdb, 0xc6, 0xff, 0x7b, 0x5b, 0x22, 0x5c, 0x00][Math.floor(r() * 10)]!;
        break;
      case 6:
        headers['content-encoding'] = ENCODINGS[Math.floor(r() * ENCODINGS.length)]!;
        if (headers['content-encoding'] === undefined) delete headers['content-encoding'];
        break;
      case 7:
        headers['content-type'] = TYPES[Math.floor(r() * TYPES.length)]!;
        break;
      default: // leave it
        break;
    }
  }
  return { name: `${base.name} mutated`, body, headers };
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Run the fuzzer against a fresh service; the report says what happened. */
export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-fuzz-'));
  const env = {
    NODE_OPTIONS: containerNodeOptions(),
    HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'data'),
    HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
    ...o.env,
  };
  const seeds = seedBodies();
  const r = mulberry32(o.seed);
  const report: FuzzReport = {
    bodies: 0, seconds: 0, statuses: {}, crashes: 0, hangs: 0, unexpected5xx: 0, p99Ms: 0, peakRssMiB: 0,
    maxDeadLetterRowsPerRequest: 0, deadLetterRows: 0, deliveredAfter: false,
  };
  const times: number[] = [];
  let child: Child = await spawnService(env);
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < o.bodies && Date.now() - started < o.maxSeconds * 1000) {
      const i = next++;
      const base = seeds[Math.floor(r() * seeds.length)]!;
      const req = i % 10 === 0 ? base : mutate(base, seeds[Math.floor(r() * seeds.length)]!, r);
      const t0 = Date.now();
      try {
        const res = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: req.body, headers: req.headers, signal: AbortSignal.timeout(o.hangMs) });
        const text = await res.text();
        times.push(Date.now() - t0);
        report.statuses[res.status] = (report.statuses[res.status] ?? 0) + 1;
        if (res.status >= 500 && res.status !== 503) report.unexpected5xx++;
        if (res.status === 200 || res.status === 400) {
          const rows = (JSON.parse(text) as { deadLetterRows?: number }).deadLetterRows ?? 0;
          report.deadLetterRows += rows;
          report.maxDeadLetterRowsPerRequest = Math.max(report.maxDeadLetterRowsPerRequest, rows);
        }
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') {
          report.hangs++;
          const heap = await child.metric('hubble_adx_nodejs_heap_size_used_bytes').catch(() => Number.NaN);
          const lag = await child.metric('hubble_adx_nodejs_eventloop_lag_max_seconds').catch(() => Number.NaN);
          o.log?.(`hang: body ${i} (${req.name}, ${req.body.length} bytes, ${JSON.stringify(req.headers)}); heap used ${(heap / 1048576).toFixed(0)} MiB, event loop lag max ${lag.toFixed(1)} s`);
        } else {
          report.statuses.connection_error = (report.statuses.connection_error ?? 0) + 1;
          o.log?.(`connection error: body ${i} (${req.name}, ${req.body.length} bytes, ${JSON.stringify(req.headers)}): ${(err as Error).message} ${String((err as { cause?: unknown }).cause)}`);
        }
      }
      report.bodies++;
      if (child.proc.exitCode === null && child.proc.signalCode === null) {
        // The body after which the peak grew markedly is named: where to look when memory is high.
        const peak = child.peakRssMiB();
        if (peak > report.peakRssMiB + 16) o.log?.(`peak RSS ${report.peakRssMiB.toFixed(0)} -> ${peak.toFixed(0)} MiB after body ${i} (${req.name}, ${req.body.length} bytes, ${JSON.stringify(req.headers)})`);
        report.peakRssMiB = Math.max(report.peakRssMiB, peak);
      }
      if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
        report.crashes++;
        o.log?.(`crash after body ${i} (${req.name}):\n${child.logs().slice(-2000)}`);
        child = await spawnService(env);
      } else if (report.bodies % 1000 === 0) {
        o.log?.(`${report.bodies} bodies, peak RSS ${report.peakRssMiB.toFixed(0)} MiB`);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  report.peakRssMiB = Math.max(report.peakRssMiB, child.peakRssMiB());
  report.seconds = (Date.now() - started) / 1000;
  report.p99Ms = quantile(times.sort((a, b) => a - b), 0.99);
  report.deliveredAfter = await deliveredAfter(child, dir);
  child.proc.kill('SIGKILL');
  await child.exited;
  rmSync(dir, { recursive: true, force: true });
  return report;
}

async function deliveredAfter(child: Child, dir: string): Promise<boolean> {
  const uuid = `fuzz-after-${Date.now()}`;
  for (let tries = 0; tries < 100; tries++) {
    const res = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: jsonLinesBody([{ log: flowLine(uuid) }]), headers: { 'content-type': CONTENT_TYPE.json_lines } });
    if (res.status === 200) break;
    await new Promise((w) => setTimeout(w, 100));
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const data = join(dir, 'data');
    for (const f of readdirSync(data).filter((n) => n.startsWith('HubbleFlows-'))) if (readFileSync(join(data, f), 'utf8').includes(uuid)) return true;
    await new Promise((w) => setTimeout(w, 100));
  }
  return false;
}
