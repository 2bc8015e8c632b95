/**
 * `npm run bench:http`: hubble-adx as its own process pinned to one core (the service as deployed,
 * the image's NODE_OPTIONS, spool on, multijson to ADX), a bounded load client and the local ADX
 * protocol server (counting rows, not decoding them) on the other core, over loopback. For gzip
 * and for plain bodies, in one run:
 *  - saturation: as fast as the service takes them, then until ADX has every accepted flow; CPU per
 *    flow of the service beside the JSON.parse floor of the same lines (measured here, same run),
 *    the share of that CPU spent in garbage collection, and peak RSS;
 *  - steady: half the saturation rate, paced; the time from request to ADX acknowledgement (p50/p99
 *    of the event-lag histogram over that phase, flows being stamped when sent).
 *   node dist/bench/http-load.js [--seconds N] [--concurrency N] [--flows-per-request N] [--encoding gzip,plain]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FakeAdx } from '../test/support/fake-adx.js';
import { metricValue } from '../test/support/metric-value.js';
import { criRecord, msgpackBody } from '../test/support/fluent-bit-bodies.js';
import { FlowGenerator } from '../test/support/generator.js';
import { containerNodeOptions } from '../test/support/container-node-options.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '4' },
    'flows-per-request': { type: 'string', default: '500' },
    // Fluent Bit's http output sends msgpack, gzipped (`compress gzip`) or not.
    encoding: { type: 'string', default: 'gzip,plain' },
    format: { type: 'string', default: 'multijson' },
  },
});
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const PER_REQUEST = Number(values['flows-per-request']);
const ENCODINGS = values.encoding!.split(',');
const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../src/cli.js');
const hasTaskset = spawnSync('taskset', ['-V']).status === 0;
const CONTAINER_NODE_OPTIONS = containerNodeOptions();

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

interface Phase {
  flows: number;
  cpuSeconds: number;
  /** Of it, in the kernel (loopback TCP, spool writes and fdatasync). */
  systemSeconds: number;
  gcSeconds: number;
  /** Of it, mark-compact (major) collections: what promotion costs. */
  majorGcSeconds: number;
  elapsed: number;
  refused: number;
  /** Requests answered once spooled but made into rows later (read back from the spool). */
  deferred: number;
  requests: number;
}

interface Result {
  encoding: string;
  saturation: Phase;
  steady: Phase & { p50: string; p99: string; rate: number };
  /** RSS once ready, before the first request (the modules loaded, nothing received). */
  idleRss: number;
  peakRss: number;
  peakHeap: number;
  peakExternal: number;
}

/** Sum of a metric over all its series in a scrape. */
function metricSum(scrape: string, name: string): number {
  let sum = 0;
  for (const m of scrape.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

/** Quantile q of the flows' event lag between two scrapes (upper bound of its bucket). */
function lagBetween(before: string, after: string, q: number): string {
  const read = (text: string) => new Map([...text.matchAll(/^hubble_adx_event_lag_seconds_bucket\{le="([^"]+)",table="flows"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
  const b = read(before);
  const diff = [...read(after)].map(([le, n]) => [le, n - (b.get(le) ?? 0)] as const);
  const total = diff[diff.length - 1]?.[1] ?? 0;
  if (total === 0) return 'n/a';
  return diff.find(([, c]) => c >= q * total)?.[0] ?? 'n/a';
}

async function runService(gzipBodies: boolean, templates: { buf: Buffer; offsets: number[]; flows: number }[]): Promise<Result> {
  const adx = new FakeAdx();
  adx.countOnly = true;
  await adx.start();
  const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-http-bench-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const env = {
    PATH: process.env.PATH,
    HUBBLE_ADX_SERVER__PORT: String(port),
    HUBBLE_ADX_LOG__LEVEL: 'warn',
    HUBBLE_ADX_SINK__TYPE: 'kusto',
    HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: adx.url,
    HUBBLE_ADX_SINK__KUSTO__DATABASE: 'bench',
    HUBBLE_ADX_SINK__KUSTO__AUTH: 'none',
    HUBBLE_ADX_SINK__KUSTO__FORMAT: values.format,
    HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_DIRECTORY: join(dir, 'dead'),
    HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
    // Any HUBBLE_ADX_* setting of the caller's environment, to try other configurations.
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('HUBBLE_ADX_') && !k.startsWith('HUBBLE_ADX_BENCH_'))),
    // The container's V8 flags (Dockerfile); HUBBLE_ADX_BENCH_NODE_OPTIONS tries others.
    NODE_OPTIONS: process.env.HUBBLE_ADX_BENCH_NODE_OPTIONS ?? CONTAINER_NODE_OPTIONS,
  };
  // HUBBLE_ADX_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the service.
  const nodeArgs = (process.env.HUBBLE_ADX_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const cmd = hasTaskset ? (['taskset', ['-c', '0', process.execPath, ...nodeArgs, CLI, 'serve']] as const) : ([process.execPath, [...nodeArgs, CLI, 'serve']] as const);
  // HUBBLE_ADX_BENCH_STDOUT=inherit shows what V8 prints there (--trace-gc and the like).
  const child = spawn(cmd[0], [...cmd[1]], { env, stdio: ['ignore', process.env.HUBBLE_ADX_BENCH_STDOUT === 'inherit' ? 'inherit' : 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // Idle: ready, a second to settle, nothing received yet.
  await new Promise((r) => setTimeout(r, 1000));
  const idleRss = metricValue(await scrape(port), 'hubble_adx_process_resident_memory_bytes');
  let cursor = 0;
  const body = () => {
    const t = templates[cursor++ % templates.length]!;
    const now = new Date().toISOString().replace('Z', '000000Z');
    const buf = Buffer.from(t.buf);
    for (const o of t.offsets) buf.write(now, o, 'latin1');
    return { buf: gzipBodies ? gzipSync(buf, { level: 1 }) : buf, flows: t.flows };
  };
  let peakRss = 0;
  let peakHeap = 0;
  let peakExternal = 0;
  const sampler = setInterval(async () => {
    const m = await scrape(port).catch(() => '');
    peakRss = Math.max(peakRss, metricValue(m, 'hubble_adx_process_resident_memory_bytes'));
    peakHeap = Math.max(peakHeap, metricValue(m, 'hubble_adx_nodejs_heap_size_total_bytes'));
    peakExternal = Math.max(peakExternal, metricValue(m, 'hubble_adx_nodejs_external_memory_bytes'));
  }, 500);
  /** Send for `seconds`, each connection waiting `gapMs` between requests; then wait for ADX to have every flow. */
  const phase = async (seconds: number, gapMs: number): Promise<Phase & { before: string; after: string }> => {
    const before = await scrape(port);
    const counted0 = adx.counted;
    let accepted = 0;
    let refused = 0;
    let deferred = 0;
    let requests = 0;
    const started = Date.now();
    const end = started + seconds * 1000;
    const worker = async () => {
      while (Date.now() < end) {
        const sentAt = Date.now();
        const b = body();
        const headers: Record<string, string> = { 'content-type': 'application/msgpack' };
        if (gzipBodies) headers['content-encoding'] = 'gzip';
        const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: b.buf, headers });
        const answer = await res.text();
        if (res.status === 200) {
          accepted += b.flows;
          requests++;
          if (answer.includes('"deferred":true')) deferred++;
        } else {
          refused++;
          await new Promise((r) => setTimeout(r, 100));
        }
        const wait = gapMs - (Date.now() - sentAt);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    // Every accepted flow at ADX (bounded: 5 minutes).
    for (let i = 0; i < 3000 && adx.counted - counted0 < accepted; i++) await new Promise((r) => setTimeout(r, 100));
    const elapsed = (Date.now() - started) / 1000;
    const after = await scrape(port);
    return {
      flows: accepted,
      cpuSeconds: metricValue(after, 'hubble_adx_process_cpu_seconds_total') - metricValue(before, 'hubble_adx_process_cpu_seconds_total'),
      systemSeconds: metricValue(after, 'hubble_adx_process_cpu_system_seconds_total') - metricValue(before, 'hubble_adx_process_cpu_system_seconds_total'),
      gcSeconds: metricSum(after, 'hubble_adx_nodejs_gc_duration_seconds_sum') - metricSum(before, 'hubble_adx_nodejs_gc_duration_seconds_sum'),
      majorGcSeconds: metricValue(after, 'hubble_adx_nodejs_gc_duration_seconds_sum', { kind: 'major' }) - metricValue(before, 'hubble_adx_nodejs_gc_duration_seconds_sum', { kind: 'major' }),
      elapsed,
      refused,
      deferred,
      requests,
      before,
      after,
    };
  };
  const saturation = await phase(SECONDS, 0);
  const rate = saturation.flows / saturation.elapsed / 2;
  const perRequest = templates[0]!.flows;
  const steadyPhase = await phase(Math.min(SECONDS, 15), (perRequest * CONCURRENCY * 1000) / Math.max(rate, 1));
  clearInterval(sampler);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await adx.stop();
  rmSync(dir, { recursive: true, force: true });
  return {
    encoding: gzipBodies ? 'gzip' : 'plain',
    saturation,
    steady: { ...steadyPhase, rate, p50: lagBetween(steadyPhase.before, steadyPhase.after, 0.5), p99: lagBetween(steadyPhase.before, steadyPhase.after, 0.99) },
    idleRss,
    peakRss,
    peakHeap,
    peakExternal,
  };
}

async function main() {
  if (hasTaskset) spawnSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
  // Bodies are built once with a placeholder time of the right length; each request writes the
  // current time into its copy, so the client costs little and lag is measured from the send.
  const PLACEHOLDER = '2000-01-01T00:00:00.000000000Z';
  const gen = new FlowGenerator(5);
  const allLines: string[] = [];
  const templates = Array.from({ length: 8 }, () => {
    const lines = gen.lines(PER_REQUEST).map((l) => l.replace(/"time":"[^"]+"/g, `"time":"${PLACEHOLDER}"`));
    allLines.push(...lines);
    const buf = msgpackBody(lines.map((l) => criRecord(l)));
    const offsets: number[] = [];
    for (let i = buf.indexOf(PLACEHOLDER); i >= 0; i = buf.indexOf(PLACEHOLDER, i + 1)) offsets.push(i);
    return { buf, offsets, flows: lines.filter((l) => l.startsWith('{"flow"')).length };
  });
  // The floor: JSON.parse of the same lines, best of five passes over them, on this process's core.
  const flowLines = allLines.filter((l) => l.startsWith('{"flow"'));
  let floorUs = Number.POSITIVE_INFINITY;
  for (let pass = 0; pass < 5; pass++) {
    const c0 = process.cpuUsage();
    for (let k = 0; k < 10; k++) for (const l of flowLines) JSON.parse(l);
    const c = process.cpuUsage(c0);
    floorUs = Math.min(floorUs, (c.user + c.system) / (10 * flowLines.length));
  }
  const lineBytes = flowLines.reduce((n, l) => n + l.length + 1, 0) / flowLines.length;
  const results: Result[] = [];
  for (const enc of ENCODINGS) results.push(await runService(enc === 'gzip', templates));
  console.log(`hubble-adx over HTTP (node ${process.version}): service ${hasTaskset ? 'pinned to CPU 0' : 'not pinned'}, ${CONCURRENCY} connections, ${PER_REQUEST} lines (${lineBytes.toFixed(0)} B per flow line) per msgpack request, ${SECONDS} s at saturation then ${Math.min(SECONDS, 15)} s at half of it; spool on, ADX format ${values.format}, NODE_OPTIONS ${process.env.HUBBLE_ADX_BENCH_NODE_OPTIONS ?? CONTAINER_NODE_OPTIONS}`);
  console.log(`JSON.parse floor of the same lines: ${floorUs.toFixed(1)} us per flow`);
  console.log('');
  const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
  const cols = ['body', 'flows/s', 'us/flow', 'x floor', 'kernel', 'GC (major)', 'p50 lag', 'p99 lag', 'peak RSS MB', 'idle RSS', '503s', 'deferred'];
  console.log(cols.map((c, i) => (i === 0 ? c.padEnd(6) : c.padStart(12))).join(''));
  for (const r of results) {
    const s = r.saturation;
    const us = (s.cpuSeconds * 1e6) / Math.max(1, s.flows);
    const row = [
      r.encoding.padEnd(6),
      (s.flows / s.elapsed).toFixed(0),
      us.toFixed(1),
      (us / floorUs).toFixed(1),
      `${((s.systemSeconds / Math.max(s.cpuSeconds, 1e-9)) * 100).toFixed(0)}%`,
      `${((s.gcSeconds / Math.max(s.cpuSeconds, 1e-9)) * 100).toFixed(0)}% (${((s.majorGcSeconds / Math.max(s.cpuSeconds, 1e-9)) * 100).toFixed(0)}%)`,
      `<= ${r.steady.p50} s`,
      `<= ${r.steady.p99} s`,
      `${mb(r.peakRss)} (heap ${mb(r.peakHeap)}, ext ${mb(r.peakExternal)})`,
      mb(r.idleRss),
      String(s.refused + r.steady.refused),
      `${((s.deferred / Math.max(1, s.requests)) * 100).toFixed(0)}%`,
    ];
    console.log(row.map((c, i) => (i === 0 ? c : c.padStart(i === 8 ? 26 : 12))).join(''));
  }
  console.log('');
  console.log('us/flow: service CPU from the first request to ADX holding every accepted flow, over the flows; lag at half the saturation rate (batch.maxAgeMs 1000, target p99 <= 2 s).');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
