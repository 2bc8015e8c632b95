/**
 * `npm run bench:outage`: an ADX outage with the default timings, against the service as the image
 * runs it (its NODE_OPTIONS, spool on, kusto sink). A steady Fluent Bit-like load (generated lines,
 * msgpack + gzip, retried on 503) runs before, during and after an outage of `--minutes` in which ADX
 * is unreachable (connection refused). Prints spool bytes per minute of outage, 503s, dead letters,
 * the time to drain once ADX is back, and peak RSS. Long: not part of `npm test`.
 *   node dist/bench/outage.js [--minutes 30] [--rate FLOWS_PER_S] [--flows-per-request N]
 */
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { spawnService } from '../test/support/child-service.js';
import { containerNodeOptions } from '../test/support/container-node-options.js';
import { FakeAdx } from '../test/support/fake-adx.js';
import { criRecord, msgpackBody } from '../test/support/fluent-bit-bodies.js';
import { FlowGenerator } from '../test/support/generator.js';
import { TcpGate } from '../test/support/tcp-gate.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '500' },
    'flows-per-request': { type: 'string', default: '250' },
  },
});
const MINUTES = Number(values.minutes);
const RATE = Number(values.rate);
const PER_REQUEST = Number(values['flows-per-request']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const adx = new FakeAdx();
  adx.countOnly = true;
  await adx.start();
  const gate = new TcpGate(Number(new URL(adx.url).port));
  await gate.open();
  const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-outage-bench-'));
  const child = await spawnService({
    NODE_OPTIONS: containerNodeOptions(),
    HUBBLE_ADX_LOG__LEVEL: 'info',
    HUBBLE_ADX_SINK__TYPE: 'kusto',
    HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: `http://127.0.0.1:${gate.port}`,
    HUBBLE_ADX_SINK__KUSTO__DATABASE: 'bench',
    HUBBLE_ADX_SINK__KUSTO__AUTH: 'none',
    HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_DIRECTORY: join(dir, 'dead'),
    HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
  });
  const url = `http://127.0.0.1:${child.port}/`;
  // A pool of request bodies from the generator, sent round-robin (their rows are counted, not kept).
  const gen = new FlowGenerator(3);
  const bodies = Array.from({ length: 40 }, () => gzipSync(msgpackBody(gen.lines(PER_REQUEST).map((l) => criRecord(l)))));
  let sentFlows = 0;
  let refused = 0;
  let stop = false;
  const load = (async () => {
    const interval = (PER_REQUEST / RATE) * 1000;
    for (let i = 0; !stop; i++) {
      const t0 = Date.now();
      for (;;) {
        const res = await fetch(url, { method: 'POST', body: bodies[i % bodies.length], headers: { 'content-type': 'application/msgpack', 'content-encoding': 'gzip' } });
        await res.arrayBuffer();
        if (res.status === 200) break;
        refused++;
        await sleep(1000);
        if (stop) return;
      }
      sentFlows += PER_REQUEST;
      await sleep(Math.max(0, interval - (Date.now() - t0)));
    }
  })();

  await sleep(10_000);
  const before = adx.counted;
  console.log(`warm-up: ${before} rows in ADX after 10 s at ${RATE} flows/s`);
  await gate.close();
  const outageStart = Date.now();
  const spoolAt: number[] = [];
  for (let m = 0; m < MINUTES; m++) {
    await sleep(60_000);
    spoolAt.push(await child.metric('hubble_adx_spool_bytes'));
    console.log(`outage minute ${m + 1}: spool ${(spoolAt[m]! / 1048576).toFixed(1)} MiB, parked ${await child.metric('hubble_adx_spool_parked_requests')}, peak RSS ${child.peakRssMiB().toFixed(0)} MiB, 503s ${refused}`);
  }
  const outageMs = Date.now() - outageStart;
  const sentAtEnd = sentFlows;
  await gate.open();
  const back = Date.now();
  // Drained: ADX holds every flow sent up to the outage's end (the load goes on meanwhile).
  while (adx.counted < sentAtEnd && Date.now() - back < 3_600_000) await sleep(500);
  const drainMs = Date.now() - back;
  stop = true;
  await load;
  const deadDir = join(dir, 'dead');
  const dead = existsSync(deadDir) ? readdirSync(deadDir).length : 0;
  const perMinute = spoolAt.length > 0 ? spoolAt[spoolAt.length - 1]! / spoolAt.length : 0;
  console.log('');
  console.log(`outage ${(outageMs / 60_000).toFixed(1)} min at ${RATE} flows/s (${PER_REQUEST} per request, msgpack+gzip)`);
  console.log(`spool growth: ${(perMinute / 1048576).toFixed(2)} MiB per minute of outage (${((perMinute / 60 / RATE) | 0)} bytes per flow); at the end ${(spoolAt[spoolAt.length - 1]! / 1048576).toFixed(1)} MiB`);
  console.log(`503 answers: ${refused}; dead-letter files: ${dead}`);
  console.log(`drain after ADX came back: ${(drainMs / 1000).toFixed(1)} s for ${sentAtEnd - before} flows held`);
  console.log(`peak RSS: ${child.peakRssMiB().toFixed(0)} MiB`);
  child.proc.kill('SIGTERM');
  await child.exited;
  await gate.close();
  await adx.stop();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
