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

const gzipAsync = promisify(gzipCb);
import type { Sink, Verdict } from '../src/sink/index.js';
import { criRecord, gzip, msgpackBody } from '../test/support/fluent-bit-bodies.js';
import { FlowGenerator } from '../test/support/generator.js';
import { HUBBLE_DIR } from '../test/support/fixtures.js';
import { AvroWriter, avroContainer } from '../src/sink/kusto/encode-avro.js';
import { multijsonLine } from '../src/sink/kusto/encode-multijson.js';
import { LinesWriter } from '../src/sink/lines-writer.js';
import { concatData, type Batch, type ChunkWriter, type EncodedChunk } from '../src/batch/index.js';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '100000' }, batch: { type: 'string', default: '1000' }, repeat: { type: 'string', default: '3' } } });
const LINES = Number(values.lines);
const BATCH = Number(values.batch);
// Shared machines are noisy: each figure is the best of REPEAT runs.
const REPEAT = Math.max(1, Number(values.repeat));

// One core, as on a busy node where hubble-adx must not take more: re-run pinned when taskset exists.
if (!process.env.HUBBLE_ADX_BENCH_PINNED && spawnSync('taskset', ['-V']).status === 0) {
  const r = spawnSync('taskset', ['-c', '0', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, HUBBLE_ADX_BENCH_PINNED: '1' },
  });
  process.exit(r.status ?? 1);
}

type Format = 'none' | 'avro' | 'multijson';

/** Rows only counted, not encoded: what the stages before encoding cost. */
class NullWriter implements ChunkWriter<unknown> {
  private rows = 0;
  add(): void {
    this.rows++;
  }
  finish(): EncodedChunk | null {
    return this.rows === 0 ? null : { data: Buffer.alloc(0), rows: this.rows, ends: null, times: new Float64Array(this.rows).fill(Number.NaN) };
  }
}

/** Counts flow rows; encodes them as the kusto sink does (rows as they are made, batches gzipped). */
class CountingSink implements Sink {
  readonly name = 'counting';
  readonly maxBatchBytes = 3_150_000;
  flows = 0;
  wireRaw = 0;
  wireGzip = 0;
  constructor(private readonly format: Format = 'none', private readonly compress = true) {}
  writer<K extends TableKey>(table: K): ChunkWriter<RowOfTable[K]> {
    if (this.format === 'avro') return new AvroWriter(table);
    if (this.format === 'multijson') return new LinesWriter(multijsonLine(table));
    return new NullWriter();
  }
  readonly routes = ['counting'];
  classify(err: unknown): Verdict {
    return { action: 'retry', reason: 'unknown', status: null, detail: String(err) };
  }
  async setAside(): Promise<void> {
    throw new Error('the counting sink refuses nothing');
  }
  async send(batch: Batch): Promise<void> {
    if (batch.table === 'flows') this.flows += batch.rows;
    if (this.format === 'none') return;
    const body = this.format === 'avro' ? avroContainer(batch) : concatData(batch);
    this.wireRaw += body.length;
    if (this.compress) {
      // Read the sum only once the gzip is done: batches are written side by side.
      const gz = await gzipAsync(body);
      this.wireGzip += gz.length;
    }
  }
  reset(): void {
    this.flows = 0;
    this.wireRaw = 0;
    this.wireGzip = 0;
  }
  async close(): Promise<void> {}
}

const quietLog = { debug() {}, info() {}, warn: console.warn, error: console.error };

interface Figure {
  stage: string;
  flows: number;
  cpuMs: number;
  wallMs: number;
  note?: string;
}

async function measureOnce(stage: string, flows: number, fn: () => Promise<void> | void): Promise<Figure> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { stage, flows, cpuMs: (cpu.user + cpu.system) / 1000, wallMs };
}

async function measure(stage: string, flows: number, fn: () => Promise<void> | void): Promise<Figure> {
  let best: Figure | null = null;
  for (let i = 0; i < REPEAT; i++) {
    const f = await measureOnce(stage, flows, fn);
    if (!best || f.cpuMs < best.cpuMs) best = f;
  }
  return best!;
}

const perSec = (f: Figure) => (f.flows / f.cpuMs) * 1000;

async function main() {
  const gen = new FlowGenerator(42);
  let lines: string[] = gen.lines(LINES);
  const lineBytes = lines.reduce((s, l) => s + l.length + 1, 0) / lines.length;
  const flowCount = lines.filter((l) => l.startsWith('{"flow"')).length;
  const bodies: Buffer[] = [];
  let wireBytes = 0;
  for (let i = 0; i < lines.length; i += BATCH) {
    const body = gzip(msgpackBody(lines.slice(i, i + BATCH).map((l) => criRecord(l))));
    wireBytes += body.length;
    bodies.push(body);
  }
  const limits = { maxDecompressedBytes: 256 * 1024 * 1024, maxRecordsPerRequest: 1_000_000, maxRecordBytes: 4 * 1024 * 1024, maxValuesPerRequest: 100_000_000 };
  const config = configSchema.parse({ batch: { maxPendingRows: 10_000_000, maxPendingBytes: 8 * 1024 * 1024 * 1024, maxRows: 2000 }, spool: { enabled: false } });
  const spoolDir = mkdtempSync(join(tmpdir(), 'hubble-adx-bench-spool-'));
  const spooled = configSchema.parse({ ...config, spool: { enabled: true, directory: spoolDir, maxBytes: 64 * 1024 * 1024 * 1024 } });
  const figures: Figure[] = [];

  /** Bodies → decode → pipeline → sink, one body at a time, the way the receiver drives it. */
  async function endToEnd(stage: string, sink: CountingSink, cfg = config, input = bodies, flows = flowCount): Promise<Figure> {
    let best: Figure | null = null;
    for (let i = 0; i < REPEAT; i++) {
      sink.reset();
      const p = new Pipeline(cfg, createMetrics({ defaultMetrics: false }), sink, quietLog);
      await p.recover();
      const f = await measureOnce(stage, flows, async () => {
        for (const b of input) {
          const d = await decodeBody(b, 'msgpack', 'gzip', limits, 'date');
          // As the receiver does: the body as received goes along, for the spool.
          if (d.ok) await p.ingest({ format: 'msgpack', encoding: 'gzip', body: b, decoded: d.decoded });
        }
        await p.flush();
      });
      await p.close();
      if (sink.flows !== flows) throw new Error(`${stage}: expected ${flows} flow rows, got ${sink.flows}`);
      if (!best || f.cpuMs < best.cpuMs) best = f;
    }
    figures.push(best!);
    return best!;
  }

  // Warm up the JIT on a slice of the input so that each stage is measured in steady state.
  for (const format of ['none', 'avro', 'multijson'] as const) {
    const p = new Pipeline(config, createMetrics({ defaultMetrics: false }), new CountingSink(format), quietLog);
    await p.recover();
    for (const b of bodies.slice(0, 20)) {
      const d = await decodeBody(b, 'msgpack', 'gzip', limits, 'date');
      if (d.ok) await p.ingest({ format: 'msgpack', encoding: 'gzip', body: b, decoded: d.decoded });
    }
    await p.close();
  }

  const floor = await measure('floor: JSON.parse of each line', flowCount, () => {
    for (const l of lines) if (l.charCodeAt(0) === 0x7b) JSON.parse(l);
  });
  figures.push(floor);
  // From here only the bodies are held, as in the service: hundreds of MB of input strings would
  // make every major collection of the stages below mark them again.
  lines = [];

  figures.push(await measure('receive: gunzip + msgpack decode', flowCount, async () => {
    for (const b of bodies) await decodeBody(b, 'msgpack', 'gzip', limits, 'date');
  }));

  await endToEnd('+ extract, normalize, enrich, batch (rows not encoded)', new CountingSink());
  const avroSink = new CountingSink('avro', false);
  const avro = await endToEnd('+ Avro encoded as made: batches ready to gzip', avroSink);
  const avroGz = new CountingSink('avro');
  await endToEnd('+ Avro encode + gzip: requests ready to send', avroGz);
  const jsonGz = new CountingSink('multijson');
  const jsonFig = await endToEnd('  the same with multijson (the default format)', jsonGz);
  const spoolFig = await endToEnd('  multijson, with the disk spool', new CountingSink('multijson'), spooled);
  rmSync(spoolDir, { recursive: true, force: true });

  // Real flows of Cilium's repository (1.4 KB lines on average, fewer labels) through the same path.
  const fixtures = fixtureBodies(BATCH);
  if (fixtures) await endToEnd(`  real fixture flows (${fixtures.flows} flows, ${fixtures.lineBytes} B/line), Avro + gzip`, new CountingSink('avro'), config, fixtures.bodies, fixtures.flows);

  const pinned = process.env.HUBBLE_ADX_BENCH_PINNED ? 'pinned to CPU 0 (taskset)' : 'not pinned (no taskset)';
  console.log(`hubble-adx bench: ${LINES} lines (${flowCount} flows), ${bodies.length} Fluent Bit bodies of ${BATCH} records, msgpack+gzip; ${pinned}; node ${process.version} ${process.execArgv.join(' ')}`);
  console.log(`input: ${(wireBytes / flowCount).toFixed(1)} bytes/flow from Fluent Bit (gzip), ${lineBytes.toFixed(0)} bytes/line raw`);
  console.log('');
  console.log('stage (each line includes the ones above it)'.padEnd(62) + 'flows/s (cpu)'.padStart(15) + 'µs/flow'.padStart(10) + 'flows/s (wall)'.padStart(16));
  for (const f of figures) {
    const perSecWall = (f.flows / f.wallMs) * 1000;
    console.log(f.stage.padEnd(62) + Math.round(perSec(f)).toLocaleString('en-US').padStart(15) + ((f.cpuMs * 1000) / f.flows).toFixed(2).padStart(10) + Math.round(perSecWall).toLocaleString('en-US').padStart(16));
  }
  console.log('');
  console.log(`end to end (msgpack+gzip in, Avro batches out) vs the JSON.parse floor: ${((perSec(avro) / perSec(floor)) * 100).toFixed(0)}% of the floor's throughput (target >= 50%); ${Math.round(perSec(avro)).toLocaleString('en-US')} flows/s (target >= 100,000)`);
  const spoolPct = ((spoolFig.cpuMs - jsonFig.cpuMs) / jsonFig.cpuMs) * 100;
  console.log(`disk spool cost: ${spoolPct >= 0 ? '+' : ''}${spoolPct.toFixed(0)}% CPU against memory-only (one body at a time, each waiting for its own fdatasync; run-to-run noise is about ±20%)`);
  console.log('');
  console.log('ADX wire format'.padEnd(30) + 'bytes/flow raw'.padStart(16) + 'bytes/flow gzip'.padStart(17) + '  (target < 150; includes HubbleIdentities rows)');
  console.log('avro'.padEnd(30) + (avroGz.wireRaw / flowCount).toFixed(0).padStart(16) + (avroGz.wireGzip / flowCount).toFixed(0).padStart(17));
  console.log('multijson'.padEnd(30) + (jsonGz.wireRaw / flowCount).toFixed(0).padStart(16) + (jsonGz.wireGzip / flowCount).toFixed(0).padStart(17));
  console.log(`peak RSS: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB (includes the generated input held in memory; see bench:http for the service's own)`);
}

/** The project's Hubble fixtures as Fluent Bit bodies. */
function fixtureBodies(batch: number): { bodies: Buffer[]; flows: number; lineBytes: number } | null {
  const dir = HUBBLE_DIR;
  const lines: string[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.jsonl')) continue;
    for (const l of readFileSync(join(dir, f), 'utf8').split('\n')) if (l.startsWith('{"flow"')) lines.push(l);
  }
  if (lines.length === 0) return null;
  // Repeated to a volume worth timing, each copy with its own UUIDs so that nothing is de-duplicated.
  const all: string[] = [];
  for (let copy = 0; all.length < 50_000; copy++) for (const l of lines) all.push(l.replace('"uuid":"', `"uuid":"${copy}-`));
  const bodies: Buffer[] = [];
  for (let i = 0; i < all.length; i += batch) bodies.push(gzip(msgpackBody(all.slice(i, i + batch).map((l) => criRecord(l)))));
  return { bodies, flows: all.length, lineBytes: Math.round(all.reduce((s, l) => s + l.length + 1, 0) / all.length) };
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
