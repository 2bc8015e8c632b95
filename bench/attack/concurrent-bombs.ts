/**
 * node dist/bench/attack/concurrent-bombs.js [--encoding zstd|gzip] [--concurrent 48] [--rounds 3]
 *
 * Bodies are inflated before they take a decode turn (limits.maxInflightRequests/Bytes), and
 * nothing bounds how many are inflated at once. A zstd body of about 700 bytes inflates to just
 * under limits.maxDecompressedBytes (8 MiB); Node's zstd (Node 24, the image) and zlib's gunzip
 * when the gzip trailer's ISIZE is small make the output in small chunks, one thread-pool job each,
 * so that every request in flight holds its partial output (and libzstd its window) at once.
 * Sends `concurrent` such requests at once, `rounds` times, to the built CLI run with the image's
 * NODE_OPTIONS, and reports the service's peak RSS (VmHWM) against the pod's 384 MiB limit.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { FakeAdx } from '../../test/support/fake-adx.js';
import { ready, serviceEnv, spawnSvc, stopHard } from './harness.js';

const { values } = parseArgs({ options: { encoding: { type: 'string', default: 'zstd' }, concurrent: { type: 'string', default: '48' }, rounds: { type: 'string', default: '3' } } });
const MAX = 8 * 1024 * 1024;
// Just under the bound: every body is inflated whole (and then refused or parsed).
const plain = Buffer.alloc(MAX - 4096, 0x20);
let body: Buffer;
if (values.encoding === 'zstd') {
  const compress = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
  if (!compress) throw new Error(`Node ${process.version} has no zstd; run this with Node 22.15 or later`);
  body = compress(plain);
} else {
  body = zlib.gzipSync(plain, { level: 9 });
  // The trailer's ISIZE is a hint for the output chunk: a small one makes many small chunks.
  body.writeUInt32LE(1, body.length - 4);
}
const hwm = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

const adx = new FakeAdx();
await adx.start();
const root = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-bombs-'));
const svc = spawnSvc((port) => serviceEnv(adx.url, join(root, 'spool'), join(root, 'dead'), port));
try {
  if (!(await ready(svc))) throw new Error(`not ready: ${svc.out().slice(-2000)}`);
  const pid = svc.child.pid!;
  console.log(JSON.stringify({ node: process.version, encoding: values.encoding, bodyBytes: body.length, inflatesTo: plain.length, idleRssMiB: Math.round(rss(pid)) }));
  let peakSampled = 0;
  const sampler = setInterval(() => {
    try {
      peakSampled = Math.max(peakSampled, rss(pid));
    } catch {
      // gone
    }
  }, 5);
  for (let round = 0; round < Number(values.rounds); round++) {
    const statuses = new Map<string, number>();
    await Promise.all(
      Array.from({ length: Number(values.concurrent) }, async () => {
        let s = 'error';
        try {
          const r = await fetch(`http://127.0.0.1:${svc.port}/`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson', 'content-encoding': values.encoding! }, signal: AbortSignal.timeout(20_000) });
          s = String(r.status);
          await r.arrayBuffer();
        } catch (e) {
          s = (e as Error).name;
        }
        statuses.set(s, (statuses.get(s) ?? 0) + 1);
      }),
    );
    const alive = svc.child.exitCode === null && svc.child.signalCode === null;
    console.log(JSON.stringify({ round, statuses: Object.fromEntries(statuses), alive, peakRssMiB: alive ? Math.round(hwm(pid)) : null, sampledPeakMiB: Math.round(peakSampled) }));
    if (!alive) {
      console.log(svc.out().slice(-2000));
      break;
    }
  }
  clearInterval(sampler);
  const peak = svc.child.exitCode === null ? hwm(pid) : Infinity;
  console.log(`concurrent-bombs: peak RSS ${Math.round(peak)} MiB (pod limit 384 MiB)`);
  process.exitCode = peak > 384 ? 1 : 0;
} finally {
  await stopHard(svc);
  await adx.stop();
  rmSync(root, { recursive: true, force: true });
}
