/**
 * node dist/bench/attack/json-maps-parked.js [--keys-per-object 1]
 *
 * A JSON object whose keys no other object has costs V8 a hidden class of its own: ~15 times its
 * text in the heap, where the limits are sized on "about 7 times". One body of
 * maxDecompressedBytes under every limit (bench/attack/json-maps.ts: records under maxRecordBytes,
 * containers under maxValuesPerRequest) decodes to ~95 MB of the image's 128 MB heap. The
 * receiver's in-flight bound (limits.maxInflightBytes) lets one such body be decoded at a time,
 * but a parked request read back from the spool by the record queue is decoded outside that
 * bound, and held decoded while it waits for room. During an ADX outage (the case the spool is
 * for): pending rows at batch.maxPendingRows, one such body parked (read back and held), a second
 * one decoded by the receiver: the heap is exhausted and the process dies.
 * The image's NODE_OPTIONS and CMD config, the kusto sink against the local ADX protocol server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { FakeAdx } from '../../test/support/fake-adx.js';
import { spawnService } from '../../test/support/child-service.js';
import { containerCommand, containerNodeOptions } from '../../test/support/container-node-options.js';
import { flowLine, K8S } from './harness.js';
import { mapsBody } from './json-maps-body.js';

const { values } = parseArgs({
  options: {
    'keys-per-object': { type: 'string', default: '1' },
    flows: { type: 'string', default: '10000' },
    restarts: { type: 'string', default: '2' },
  },
});

const CONTAINER_LIMIT_MIB = 384;
const adx = new FakeAdx();
await adx.start();
adx.down = true;
const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-maps-parked-'));
const env = {
  NODE_OPTIONS: containerNodeOptions(),
  NODE_NAME: 'attack-node',
  HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
  HUBBLE_ADX_SINK__TYPE: 'kusto',
  HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: adx.url,
  HUBBLE_ADX_SINK__KUSTO__DATABASE: 'hubble',
  HUBBLE_ADX_SINK__KUSTO__AUTH: 'none',
  HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_DIRECTORY: join(dir, 'dead'),
  HUBBLE_ADX_LOG__LEVEL: 'info',
};
const child = await spawnService(env, undefined, containerCommand());
let peak = 0;
const sampler = setInterval(() => {
  try {
    const p = child.peakRssMiB();
    if (p > 0) peak = Math.max(peak, p);
  } catch {
    // exited
  }
}, 100);
const post2 = (port: number, body: Buffer) =>
  fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    body: gzipSync(body),
    headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
    signal: AbortSignal.timeout(60_000),
  }).then(
    (x) => String(x.status),
    (e: unknown) => (e as Error).name,
  );
const post = (body: Buffer, gzip: boolean) =>
  fetch(`http://127.0.0.1:${child.port}/`, {
    method: 'POST',
    body: gzip ? gzipSync(body) : body,
    headers: { 'content-type': 'application/x-ndjson', ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
    signal: AbortSignal.timeout(60_000),
  }).then(
    async (x) => `${x.status} ${(await x.text()).slice(0, 100)}`,
    (e: unknown) => (e as Error).name,
  );
const per = Number(values['keys-per-object']);
try {
  // ADX is down: pending rows reach batch.maxPendingRows, so later requests are parked.
  const n = Number(values.flows);
  const flows = Buffer.from(
    Array.from({ length: n }, (_, i) => JSON.stringify({ log: flowLine(`fill-${i}`), stream: 'stdout', kubernetes: K8S })).join('\n'),
  );
  const statuses: string[] = [await post(flows, true)];
  await new Promise((r) => setTimeout(r, 1500));
  // Each map body's log line starts with `{`: not an agent line, so it is spooled, not answered as junk.
  for (let j = 0; j < 2 && child.proc.exitCode === null && child.proc.signalCode === null; j++) {
    statuses.push(await post(mapsBody(`b${j}k`, per), true));
    await new Promise((r) => setTimeout(r, 1500));
  }
  for (let i = 0; i < 15 && child.proc.exitCode === null && child.proc.signalCode === null; i++)
    await new Promise((r) => setTimeout(r, 200));
  const alive = child.proc.exitCode === null && child.proc.signalCode === null;
  const logs = child.logs();
  console.log(
    JSON.stringify({
      statuses,
      alive,
      exit: alive ? null : [child.proc.exitCode, child.proc.signalCode],
      peakRssMiB: Math.round(peak),
      containerLimitMiB: CONTAINER_LIMIT_MIB,
      heapOutOfMemory: logs.includes('heap out of memory'),
    }),
  );
  if (!alive)
    console.log(
      logs
        .split('\n')
        .filter((l) => /FATAL|out of memory/.test(l))
        .slice(-2)
        .join('\n'),
    );
  process.exitCode = peak > CONTAINER_LIMIT_MIB || !alive ? 1 : 0;
  // The restart the kubelet makes, on the same spool, ADX still down: the parked body is replayed.
  if (!alive) {
    for (let r = 0; r < Number(values.restarts); r++) {
      const again = await spawnService(env, undefined, containerCommand()).catch((e: unknown) => e as Error);
      if (again instanceof Error) {
        console.log(
          JSON.stringify({
            restart: r + 1,
            started: false,
            log: again.message
              .split('\n')
              .filter((l) => /FATAL|out of memory/.test(l))
              .slice(-1),
          }),
        );
        continue;
      }
      let answer = '';
      for (let i = 0; i < 50 && again.proc.exitCode === null && again.proc.signalCode === null; i++) {
        await new Promise((res) => setTimeout(res, 200));
        // Fluent Bit's ordinary traffic: a body of 200 flows, every second.
        if (i % 5 === 4) {
          const body = gzipSync(
            Buffer.from(
              Array.from({ length: 200 }, (_, k) =>
                JSON.stringify({ log: flowLine(`after-${r}-${i}-${k}`), stream: 'stdout', kubernetes: K8S }),
              ).join('\n'),
            ),
          );
          answer = await fetch(`http://127.0.0.1:${again.port}/`, {
            method: 'POST',
            body,
            headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
            signal: AbortSignal.timeout(5000),
          }).then(
            (x) => String(x.status),
            (e: unknown) => (e as Error).name,
          );
        }
      }
      // The second restart: one more crafted body, the parked one being held again.
      let crafted = '';
      if (r === 1) {
        crafted = await post2(again.port, mapsBody(`r${r}k`, per));
        for (let i = 0; i < 15 && again.proc.exitCode === null && again.proc.signalCode === null; i++)
          await new Promise((res) => setTimeout(res, 200));
      }
      const up = again.proc.exitCode === null && again.proc.signalCode === null;
      console.log(
        JSON.stringify({
          restart: r + 1,
          crafted,
          aliveAfter10s: up,
          exit: up ? null : [again.proc.exitCode, again.proc.signalCode],
          lastAnswer: answer,
          heapOutOfMemory: again.logs().includes('heap out of memory'),
          peakRssMiB: up ? Math.round(again.peakRssMiB()) : null,
        }),
      );
      again.proc.kill('SIGKILL');
      await again.exited;
    }
  }
} finally {
  clearInterval(sampler);
  child.proc.kill('SIGKILL');
  await child.exited;
  await adx.stop();
  rmSync(dir, { recursive: true, force: true });
}
