/**
 * `npm run bench`: throughput and cost of each stage on one core, over synthetic cilium-agent
 * stdout sent as Fluent Bit would send it (msgpack events, gzip). Prints a table of figures.
 *   node dist/bench/run.js [--lines N] [--batch N]
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { configSchema } from '../src/config/index.js';
import { createMetrics } from '../src/metrics/index.js';
import { Pipeline } from '../src/pipeline.js';
import { decodeBody } from '../src/receive/index.js';
import type { RowOfTable, TableKey } from '../src/schema/index.js';
import type { Sink } from '../src/sink/index.js';
import { criRecord, gzip, msgpackBody } from './fluent-bit-bodies.js';
import { FlowGenerator } from './generator.js';
import { encodeAvro } from '../src/sink/kusto/encode-avro.js';
import { encodeMultijson } from '../src/sink/kusto/encode-multijson.js';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlowRow } from '../src/schema/index.js';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '200000' }, batch: { type: 'string', default: '1000' } } });
const LINES = Number(values.lines);
const BATCH = Number(values.batch);

// One core, as on a busy node where hubble-adx must not take more: re-run pinned when taskset exists.
if (!process.env.HUBBLE_ADX_BENCH_PINNED && spawnSync('taskset', ['-V']).status === 0) {
  const r = spawnSync('taskset', ['-c', '0', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, HUBBLE_ADX_BENCH_PINNED: '1' },
  });
  process.exit(r.status ?? 1);
}

class CountingSink implements Sink {
  readonly name = 'counting';
  rows = 0;
  jsonBytes = 0;
  measureBytes = false;
  keep: FlowRow[] | null = null;
  async write<K extends TableKey>(table: K, rows: RowOfTable[K][]): Promise<void> {
    this.rows += rows.length;
    if (this.keep && table === 'flows' && this.keep.length < 50_000) this.keep.push(...(rows as FlowRow[]));
    if (this.measureBytes) for (const r of rows) this.jsonBytes += Buffer.byteLength(JSON.stringify(r)) + 1;
  }
  async close(): Promise<void> {}
}

interface Figure {
  stage: string;
  flows: number;
  cpuMs: number;
  wallMs: number;
}

async function measure(stage: string, flows: number, fn: () => Promise<void> | void): Promise<Figure> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { stage, flows, cpuMs: (cpu.user + cpu.system) / 1000, wallMs };
}

async function main() {
  const gen = new FlowGenerator(42);
  const lines = gen.lines(LINES);
  const flowCount = lines.filter((l) => l.startsWith('{"flow"')).length;
  const bodies: Buffer[] = [];
  let wireBytes = 0;
  for (let i = 0; i < lines.length; i += BATCH) {
    const body = gzip(msgpackBody(lines.slice(i, i + BATCH).map((l) => criRecord(l))));
    wireBytes += body.length;
    bodies.push(body);
  }
  const limits = { maxDecompressedBytes: 256 * 1024 * 1024, maxRecordsPerRequest: 1_000_000 };
  const config = configSchema.parse({ batch: { maxPendingRows: 10_000_000, maxPendingBytes: 8 * 1024 * 1024 * 1024, maxRows: 5000 }, spool: { enabled: false } });
  const spoolDir = mkdtempSync(join(tmpdir(), 'hubble-adx-bench-spool-'));
  const spooled = configSchema.parse({ ...config, spool: { enabled: true, directory: spoolDir, maxBytes: 64 * 1024 * 1024 * 1024 } });
  const figures: Figure[] = [];

  // Warm up the JIT on a slice of the input so that each stage is measured in steady state.
  {
    const p = new Pipeline(config, createMetrics({ defaultMetrics: false }), new CountingSink(), console);
    for (const b of bodies.slice(0, 20)) {
      const d = await decodeBody(b, 'msgpack', 'gzip', limits, 'date');
      if (d.ok) await p.ingest(d.decoded, 'msgpack', d.inflatedBytes);
    }
    await p.close();
  }

  figures.push(await measure('floor: JSON.parse of each line', flowCount, () => {
    for (const l of lines) if (l.charCodeAt(0) === 0x7b) JSON.parse(l);
  }));

  const decoded: Awaited<ReturnType<typeof decodeBody>>[] = [];
  figures.push(await measure('receive: gunzip + msgpack decode', flowCount, async () => {
    for (const b of bodies) decoded.push(await decodeBody(b, 'msgpack', 'gzip', limits, 'date'));
  }));

  const sink = new CountingSink();
  const pipeline = new Pipeline(config, createMetrics({ defaultMetrics: false }), sink, console);
  figures.push(await measure('extract + normalize + batch', flowCount, async () => {
    for (const d of decoded) if (d.ok) await pipeline.ingest(d.decoded, 'msgpack', d.inflatedBytes);
    await pipeline.flush();
  }));
  await pipeline.close();
  decoded.length = 0;

  /** Bodies → decode → pipeline → sink, the way the receiver drives it. */
  async function endToEnd(stage: string, sink: CountingSink, cfg = config): Promise<void> {
    const p = new Pipeline(cfg, createMetrics({ defaultMetrics: false }), sink, console);
    figures.push(await measure(stage, flowCount, async () => {
      for (const b of bodies) {
        const d = await decodeBody(b, 'msgpack', 'gzip', limits, 'date');
        if (d.ok) await p.ingest(d.decoded, 'msgpack', d.inflatedBytes);
      }
      await p.flush();
    }));
    await p.close();
    if (sink.rows !== flowCount) throw new Error(`${stage}: expected ${flowCount} rows, got ${sink.rows}`);
  }

  await endToEnd('end to end in-process (msgpack+gzip → rows)', new CountingSink());
  await endToEnd('end to end with the disk spool (group commit)', new CountingSink(), spooled);
  rmSync(spoolDir, { recursive: true, force: true });
  const sink3 = new CountingSink();
  sink3.measureBytes = true;
  sink3.keep = [];
  await endToEnd('end to end + JSON lines encoding (local sink)', sink3);

  // The ADX wire formats: encode + gzip batches of 2,000 rows, as the kusto sink does.
  const kept = sink3.keep;
  const wire: { format: string; cpuMs: number; raw: number; gz: number }[] = [];
  for (const [format, encode] of [['avro', encodeAvro], ['multijson', encodeMultijson]] as const) {
    let raw = 0;
    let gz = 0;
    const f = await measure(format, kept.length, async () => {
      for (let i = 0; i < kept.length; i += 2000) {
        const buf = await encode('flows', kept.slice(i, i + 2000));
        raw += buf.length;
        gz += gzipSync(buf).length;
      }
    });
    wire.push({ format, cpuMs: f.cpuMs, raw, gz });
  }

  const pinned = process.env.HUBBLE_ADX_BENCH_PINNED ? 'pinned to CPU 0 (taskset)' : 'not pinned (no taskset)';
  console.log(`hubble-adx bench: ${LINES} lines (${flowCount} flows), ${bodies.length} Fluent Bit bodies of ${BATCH} records, msgpack+gzip; ${pinned}; node ${process.version}`);
  console.log(`input: ${(wireBytes / flowCount).toFixed(1)} bytes/flow from Fluent Bit (gzip), ${(lines.reduce((s, l) => s + l.length + 1, 0) / lines.length).toFixed(0)} bytes/line raw`);
  console.log('');
  console.log('stage'.padEnd(50) + 'flows/s (cpu)'.padStart(16) + 'µs/flow'.padStart(10) + 'flows/s (wall)'.padStart(16));
  const floor = figures[0]!;
  for (const f of figures) {
    const perSecCpu = (f.flows / f.cpuMs) * 1000;
    const perSecWall = (f.flows / f.wallMs) * 1000;
    console.log(f.stage.padEnd(50) + Math.round(perSecCpu).toLocaleString('en-US').padStart(16) + ((f.cpuMs * 1000) / f.flows).toFixed(2).padStart(10) + Math.round(perSecWall).toLocaleString('en-US').padStart(16));
  }
  const e2eFig = figures[3]!;
  const spoolFig = figures[4]!;
  console.log('');
  console.log(`end to end vs JSON.parse floor: ${((floor.cpuMs / e2eFig.cpuMs) * 100).toFixed(0)}% of the floor's throughput`);
  console.log(`disk spool cost: ${(((spoolFig.wallMs - e2eFig.wallMs) / e2eFig.wallMs) * 100).toFixed(0)}% more wall time, ${(((spoolFig.cpuMs - e2eFig.cpuMs) / e2eFig.cpuMs) * 100).toFixed(0)}% more CPU than memory-only (one body at a time, so every body waits for its own fdatasync)`);
  console.log(`local sink output: ${(sink3.jsonBytes / flowCount).toFixed(0)} bytes/flow (uncompressed JSON lines)`);
  console.log('');
  console.log('ADX wire format (batches of 2,000 rows)'.padEnd(42) + 'µs/row encode+gzip'.padStart(20) + 'bytes/row raw'.padStart(15) + 'bytes/row gzip'.padStart(16));
  for (const w of wire) {
    console.log(w.format.padEnd(42) + ((w.cpuMs * 1000) / kept.length).toFixed(2).padStart(20) + (w.raw / kept.length).toFixed(0).padStart(15) + (w.gz / kept.length).toFixed(0).padStart(16));
  }
  console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (includes the generated input held in memory)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
