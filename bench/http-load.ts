/**
 * `npm run bench:http`: hubble-adx as its own process pinned to one core (the service as deployed,
 * spool on, multijson to ADX), a bounded load client and the local ADX protocol server (counting
 * rows, not decoding them) on the other core, over loopback. Prints sustained flows/s, CPU per flow of the service, the time from request to ADX
 * acknowledgement (p50/p99 of the event-lag histogram, flows being stamped when sent) and peak RSS.
 *   node dist/bench/http-load.js [--seconds N] [--concurrency N] [--flows-per-request N]
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
import { lagQuantile } from '../test/support/lag-quantile.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '4' },
    'flows-per-request': { type: 'string', default: '500' },
    // Fluent Bit's http output sends msgpack; `compress gzip` is what a node-to-service hop uses.
    encoding: { type: 'string', default: 'gzip' },
    format: { type: 'string', default: 'multijson' },
  },
});
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const PER_REQUEST = Number(values['flows-per-request']);
const GZIP = values.encoding === 'gzip';
const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../src/cli.js');
const hasTaskset = spawnSync('taskset', ['-V']).status === 0;
const CONTAINER_NODE_OPTIONS = containerNodeOptions();

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

async function main() {
  if (hasTaskset) spawnSync('taskset', ['-cp', '1', String(process.pid)], { stdio: 'ignore' });
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
  const child = spawn(cmd[0], [...cmd[1]], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).ok) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // Bodies are built once with a placeholder time of the right length; each request writes the
  // current time into its copy, so the client costs little and lag is measured from the send.
  const PLACEHOLDER = '2000-01-01T00:00:00.000000000Z';
  const gen = new FlowGenerator(5);
  const templates = Array.from({ length: 8 }, () => {
    const lines = gen.lines(PER_REQUEST).map((l) => l.replace(/"time":"[^"]+"/g, `"time":"${PLACEHOLDER}"`));
    const buf = msgpackBody(lines.map((l) => criRecord(l)));
    const offsets: number[] = [];
    for (let i = buf.indexOf(PLACEHOLDER); i >= 0; i = buf.indexOf(PLACEHOLDER, i + 1)) offsets.push(i);
    return { buf, offsets, flows: lines.filter((l) => l.startsWith('{"flow"')).length };
  });
  let cursor = 0;
  const body = () => {
    const t = templates[cursor++ % templates.length]!;
    const now = new Date().toISOString().replace('Z', '000000Z');
    const buf = Buffer.from(t.buf);
    for (const o of t.offsets) buf.write(now, o, 'latin1');
    return { buf: GZIP ? gzipSync(buf, { level: 1 }) : buf, flows: t.flows };
  };
  const before = await scrape(port);
  const cpu0 = metricValue(before, 'hubble_adx_process_cpu_seconds_total');
  let accepted = 0;
  let refused = 0;
  let peakRss = 0;
  let peakHeap = 0;
  let peakExternal = 0;
  const started = Date.now();
  const end = started + SECONDS * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      const b = body();
      const headers: Record<string, string> = { 'content-type': 'application/msgpack' };
      if (GZIP) headers['content-encoding'] = 'gzip';
      const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: b.buf, headers });
      await res.arrayBuffer();
      if (res.status === 200) accepted += b.flows;
      else {
        refused++;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const sampler = setInterval(async () => {
    const m = await scrape(port);
    peakRss = Math.max(peakRss, metricValue(m, 'hubble_adx_process_resident_memory_bytes'));
    peakHeap = Math.max(peakHeap, metricValue(m, 'hubble_adx_nodejs_heap_size_total_bytes'));
    peakExternal = Math.max(peakExternal, metricValue(m, 'hubble_adx_nodejs_external_memory_bytes'));
  }, 1000);
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = (Date.now() - started) / 1000;
  // Let what was accepted reach ADX before reading the lag and CPU.
  for (let i = 0; i < 100 && adx.counted < accepted; i++) await new Promise((r) => setTimeout(r, 100));
  clearInterval(sampler);
  const after = await scrape(port);
  const cpu = metricValue(after, 'hubble_adx_process_cpu_seconds_total') - cpu0;
  peakRss = Math.max(peakRss, metricValue(after, 'hubble_adx_process_resident_memory_bytes'));
  const stored = adx.counted;
  console.log(`hubble-adx over HTTP: service ${hasTaskset ? 'pinned to CPU 0' : 'not pinned'}, ${CONCURRENCY} client connections, ${PER_REQUEST} lines per msgpack${GZIP ? '+gzip' : ''} request, ${SECONDS} s, spool on, ADX format ${values.format}, NODE_OPTIONS ${env.NODE_OPTIONS}`);
  console.log(`accepted ${accepted} flows (${(accepted / elapsed).toFixed(0)} flows/s), ${refused} answers 503, stored at ADX ${stored}`);
  console.log(`service CPU ${cpu.toFixed(1)} s: ${((cpu * 1e6) / Math.max(1, accepted)).toFixed(1)} us per flow, ${(accepted / Math.max(cpu, 1e-9)).toFixed(0)} flows per CPU-second`);
  console.log(`request to ADX acknowledgement: p50 <= ${lagQuantile(after, 0.5)} s, p99 <= ${lagQuantile(after, 0.99)} s (batch.maxAgeMs 1000)`);
  const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
  console.log(`peak RSS ${mb(peakRss)} MB (V8 heap ${mb(peakHeap)} MB, buffers outside it ${mb(peakExternal)} MB)`);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await adx.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
