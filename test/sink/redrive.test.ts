/**
 * `hubble-adx redrive` with files that are not what they should be: a batch cut short, a reason
 * file cut short, a gzip bomb. Each is left where it is with a reason; every other batch is sent,
 * with the real SDK against the local ADX protocol server.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import type { Logger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics/index.js';
import { normalizeFlow } from '../../src/normalize/index.js';
import { redrive } from '../../src/redrive.js';
import type { FlowRow } from '../../src/schema/index.js';
import { DeadLetterFiles } from '../../src/sink/kusto/dead-letter-files.js';
import { encodeAvro } from '../../src/sink/kusto/encode-avro.js';
import { encodeMultijson } from '../../src/sink/kusto/encode-multijson.js';
import { containerNodeOptions } from '../support/container-node-options.js';
import { FakeAdx } from '../support/fake-adx.js';
import { flowLine } from '../support/hostile-bodies.js';
import { projectRoot } from '../support/project-root.js';

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const flows = (prefix: string, n: number): FlowRow[] =>
  Array.from({ length: n }, (_, i) => normalizeFlow((JSON.parse(flowLine(`${prefix}-${i}`)) as { flow: Record<string, unknown> }).flow, { nodeName: null, time: null, lineTime: null, lineTimeSec: null }, 'c'));

describe('redrive leaves what it cannot read whole, with a reason, and sends the rest', () => {
  let adx: FakeAdx;
  let dir: string;
  beforeAll(async () => {
    adx = new FakeAdx();
    await adx.start();
  });
  afterAll(() => adx.stop());
  afterEach(() => {
    adx.reset();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = () => configSchema.parse({ sink: { type: 'kusto', kusto: { clusterUrl: adx.url, database: 'hubble', auth: 'none', format: 'avro', deadLetterDirectory: dir } } });
  const run = () => redrive(dir, config(), createMetrics({ defaultMetrics: false }), quiet);
  const files = () => readdirSync(dir).sort();
  const sent = () => adx.table('HubbleFlows').map((r) => r.Uuid as string).sort();

  /** Three batches as the sink writes them: Avro, JSON lines, Avro; returns their rows files. */
  async function threeBatches(): Promise<string[]> {
    dir = mkdtempSync(join(tmpdir(), 'hubble-adx-redrive-'));
    const dl = new DeadLetterFiles(dir, 1 << 30);
    const reason = { reason: 'mapping', detail: 'BadRequest_MappingReferenceWasNotFound' };
    return [
      await dl.write('HubbleFlows', 'avro', await encodeAvro('flows', flows('a', 500)), 500, reason),
      await dl.write('HubbleFlows', 'multijson', await encodeMultijson('flows', flows('b', 20)), 20, reason),
      await dl.write('HubbleFlows', 'avro', await encodeAvro('flows', flows('c', 30)), 30, reason),
    ];
  }
  const uuids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

  it('whole batches are all sent and removed (the baseline of the cases below)', async () => {
    await threeBatches();
    const summary = await run();
    expect(summary).toMatchObject({ batches: 3, sent: 3, rows: 550, left: 0, problems: [] });
    expect(sent()).toEqual([...uuids('a', 500), ...uuids('b', 20), ...uuids('c', 30)].sort());
    expect(files()).toEqual([]);
  });

  it('an Avro batch cut short (it decodes to no rows) is left in place, not counted as sent', async () => {
    const [avro] = await threeBatches();
    const cut = gzipSync(Buffer.from(gunzipSync(readFileSync(avro!)).subarray(0, 20_000)));
    writeFileSync(avro!, cut);
    const before = files();
    const summary = await run();
    expect(summary).toMatchObject({ batches: 3, sent: 2, rows: 50, left: 1 });
    expect(summary.problems).toEqual([{ file: avro, reason: 'it holds 0 rows where the batch had 500 (cut short?)' }]);
    expect(sent()).toEqual([...uuids('b', 20), ...uuids('c', 30)].sort());
    expect(files()).toEqual(before.filter((f) => f.includes('-0000.')));
  });

  it('a JSON-lines batch that lost its last lines, or ends in half a line, is left in place', async () => {
    const [, lines, avro] = await threeBatches();
    const text = gunzipSync(readFileSync(lines!)).toString('utf8').split('\n');
    writeFileSync(lines!, gzipSync(text.slice(0, 10).join('\n') + '\n'));
    writeFileSync(avro!, gzipSync(Buffer.from('{"Uuid":"c-0"}\n{"Uui')));
    const summary = await run();
    expect(summary).toMatchObject({ sent: 1, rows: 500, left: 2 });
    expect(summary.problems.map((p) => p.reason)).toEqual(['it holds 10 rows where the batch had 20 (cut short?)', expect.stringMatching(/^it is not a whole Avro file|^it holds 0 rows/)]);
    expect(files().filter((f) => f.endsWith('.gz'))).toHaveLength(2);
  });

  it('a reason file cut short is reported and skipped; the batches after it are sent', async () => {
    const [avro] = await threeBatches();
    const reasonFile = avro!.replace(/\.avro\.gz$/, '.reason.json');
    writeFileSync(reasonFile, readFileSync(reasonFile, 'utf8').slice(0, 20));
    const summary = await run();
    expect(summary).toMatchObject({ batches: 3, sent: 2, rows: 50, left: 1 });
    expect(summary.problems).toEqual([{ file: reasonFile, reason: expect.stringMatching(/^the reason file cannot be read: .*JSON/) }]);
    expect(files()).toEqual([avro!, reasonFile].map((f) => f.slice(dir.length + 1)).sort());
  });

  it('a rows file that cannot be read at all is reported and skipped', async () => {
    const [avro] = await threeBatches();
    writeFileSync(avro!, Buffer.from('not gzip at all'));
    const summary = await run();
    expect(summary).toMatchObject({ sent: 2, left: 1 });
    expect(summary.problems[0]!.reason).toMatch(/^it is not a whole gzip file/);
  });

  it('a 1 MB gzip bomb among the dead letters is not inflated past the bound: left with a reason, peak RSS of the CLI (the image\'s NODE_OPTIONS) under 200 MiB', async () => {
    const [, lines] = await threeBatches();
    // 128 gzip members of 8 MiB of zeros each: 1 MB on disk, 1 GiB inflated.
    const member = gzipSync(Buffer.alloc(8 << 20));
    writeFileSync(lines!, Buffer.concat(Array.from({ length: 128 }, () => member)));
    const cli = join(projectRoot(), 'dist', 'src', 'cli.js');
    const env = {
      PATH: process.env.PATH ?? '', NODE_OPTIONS: containerNodeOptions(), HUBBLE_ADX_SINK__TYPE: 'kusto', HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: adx.url,
      HUBBLE_ADX_SINK__KUSTO__DATABASE: 'hubble', HUBBLE_ADX_SINK__KUSTO__AUTH: 'none', HUBBLE_ADX_SINK__KUSTO__FORMAT: 'avro', HUBBLE_ADX_LOG__LEVEL: 'fatal',
    };
    // Not spawnSync: the local ADX server answers from this process's event loop.
    const proc = spawn(process.execPath, [cli, 'redrive', dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    let peakKiB = 0;
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
        if (m) peakKiB = Math.max(peakKiB, Number(m[1]));
      } catch {
        // exited between two looks
      }
    }, 20);
    const code = await new Promise<number | null>((r) => proc.on('exit', r));
    clearInterval(poll);
    expect(code).toBe(1);
    const summary = JSON.parse(stdout) as { sent: number; left: number; problems: { file: string; reason: string }[] };
    expect(summary).toMatchObject({ sent: 2, left: 1, problems: [{ file: lines, reason: expect.stringMatching(/^it inflates past 8388608 bytes/) }] });
    expect(sent()).toEqual([...uuids('a', 500), ...uuids('c', 30)].sort());
    expect(peakKiB / 1024).toBeGreaterThan(0);
    expect(peakKiB / 1024).toBeLessThan(200);
  }, 30_000);
});
