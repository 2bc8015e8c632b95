/**
 * `npm run bench:adx`: hubble-adx under a steady Fluent Bit load on loopback, streaming into the
 * local ADX protocol server (test/support/fake-adx.ts) with the real SDK. Prints rows/s and the
 * event-time lag histogram (flow time → ADX acknowledgement) for each wire format.
 *   node dist/bench/adx-loopback.js [--seconds N] [--rate FLOWS_PER_S]
 */
import { parseArgs } from 'node:util';
import { configSchema } from '../src/config/index.js';
import { createService } from '../src/service.js';
import { FakeAdx } from '../test/support/fake-adx.js';
import { metricValue } from '../test/support/metric-value.js';
import { criRecord, gzip, msgpackBody } from '../test/support/fluent-bit-bodies.js';
import { FlowGenerator } from '../test/support/generator.js';
import { lagQuantile } from '../test/support/lag-quantile.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '15' }, rate: { type: 'string', default: '2000' } } });
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const TICK_MS = 100;

async function run(format: 'multijson' | 'avro') {
  const adx = new FakeAdx();
  await adx.start();
  const config = configSchema.parse({ sink: { type: 'kusto', kusto: { clusterUrl: adx.url, database: 'bench', auth: 'none', format } }, log: { level: 'warn' } });
  const service = createService(config, { logger: false });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = service.app.server.address() as { port: number };
  const gen = new FlowGenerator(7);
  const perTick = Math.round((RATE * TICK_MS) / 1000);
  // Generated up front so that the load loop spends its time sending, not generating.
  const pool = gen.lines(perTick * 20);
  let cursor = 0;
  let sent = 0;
  const started = Date.now();
  const end = started + SECONDS * 1000;
  let next = started;
  while (Date.now() < end) {
    // Each flow's time is "now", as the exporter would stamp it.
    const now = new Date().toISOString().replace('Z', '000000Z');
    const lines: string[] = [];
    for (let i = 0; i < perTick; i++) lines.push(pool[cursor++ % pool.length]!.replace(/"time":"[^"]+"/g, `"time":"${now}"`));
    const body = gzip(msgpackBody(lines.map((l) => criRecord(l))));
    const res = await fetch(`http://127.0.0.1:${addr.port}/`, { method: 'POST', body, headers: { 'content-type': 'application/msgpack', 'content-encoding': 'gzip' } });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    sent += lines.filter((l) => l.startsWith('{"flow"')).length;
    next += TICK_MS;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
  await service.pipeline.flush();
  const elapsed = (Date.now() - started) / 1000;
  const text = await service.metrics.registry.metrics();
  const stored = adx.table('HubbleFlows').length;
  const bytes = metricValue(text, 'hubble_adx_kusto_bytes_sent_total', { table: 'flows' });
  console.log(
    `${format.padEnd(10)} flows sent ${sent}, stored at ADX ${stored}, ${(stored / elapsed).toFixed(0)} rows/s, ` +
      `${(bytes / stored).toFixed(0)} bytes/row on the wire, lag p50 ≤ ${lagQuantile(text, 0.5)} s, p90 ≤ ${lagQuantile(text, 0.9)} s, p99 ≤ ${lagQuantile(text, 0.99)} s, ` +
      `requests ${adx.requests.length}`,
  );
  await service.stop();
  await adx.stop();
  if (stored !== sent) throw new Error(`lost rows: sent ${sent}, stored ${stored}`);
}

async function main() {
  console.log(`hubble-adx → local ADX protocol server over loopback: ${RATE} flows/s for ${SECONDS} s per format, batch.maxAgeMs 1000`);
  await run('multijson');
  await run('avro');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
