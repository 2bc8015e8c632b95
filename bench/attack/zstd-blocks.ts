/**
 * node dist/bench/attack/zstd-blocks.js [--blocks 20000]
 *
 * fzstd's streaming Decompress, for every block, shifts the frame's whole window (copyWithin of
 * window-size bytes) before it appends the block. A frame may ask for a window up to
 * limits.maxDecompressedBytes (8 MiB, allowed by zstd-frames.ts), and a block may be one byte (an
 * RLE block: 4 bytes on the wire): every 4 bytes sent cost ~0.35 ms of event loop, synchronously,
 * in the receiver before any bound (decompress.ts unzstdBounded). A body of 80 KB blocks the event
 * loop ~7 s; maxBodyBytes (8 MiB) would block it for ~12 minutes. The first block carries one valid
 * flow record and the rest inflate to newlines, so the body is answered 200 and spooled: every start
 * replays it, and blocks again (a liveness probe then kills it each time).
 * The image's NODE_OPTIONS and CMD config, the local sink.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnService, type Child } from '../../test/support/child-service.js';
import { containerCommand, containerNodeOptions } from '../../test/support/container-node-options.js';
import { flowLine, K8S } from './harness.js';
import { slowZstd } from '../../test/support/hostile-bodies.js';

const { values } = parseArgs({ options: { blocks: { type: 'string', default: '20000' } } });

/** The longest /healthz took to answer while `during` ran (polled every 100 ms). */
async function worstHealthz(child: Child, during: Promise<unknown>): Promise<number> {
  const state = { done: false };
  void during.finally(() => (state.done = true));
  let worst = 0;
  while (!state.done) {
    const t0 = Date.now();
    await fetch(`http://127.0.0.1:${child.port}/healthz`, { signal: AbortSignal.timeout(60_000) }).catch(() => undefined);
    worst = Math.max(worst, Date.now() - t0);
    await new Promise((r) => setTimeout(r, 100));
  }
  return worst;
}

const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-zstd-'));
const env = {
  NODE_OPTIONS: containerNodeOptions(),
  HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
  HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'out'),
  HUBBLE_ADX_SPOOL__LOCK_STALE_MS: '2000',
};
const first = Buffer.from(`${JSON.stringify({ log: flowLine('zstd-slow-1'), stream: 'stdout', kubernetes: K8S })}\n`);
const body = slowZstd(first, Number(values.blocks));
let child = await spawnService(env, undefined, containerCommand());
const delivered = () => {
  try {
    const out = join(dir, 'out');
    return readdirSync(out)
      .filter((n) => n.startsWith('HubbleFlows-'))
      .reduce((n, f) => n + readFileSync(join(out, f), 'utf8').split('zstd-slow-1').length - 1, 0);
  } catch {
    return 0;
  }
};
try {
  const t0 = Date.now();
  const answered = fetch(`http://127.0.0.1:${child.port}/`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'zstd' },
    signal: AbortSignal.timeout(120_000),
  }).then(
    async (r) => `${r.status} ${(await r.text()).slice(0, 80)}`,
    (e: unknown) => (e as Error).name,
  );
  const worst = await worstHealthz(child, answered);
  console.log(JSON.stringify({ bodyBytes: body.length, answer: await answered, answeredInMs: Date.now() - t0, worstHealthzMs: worst }));
  // kill -9 before the record leaves the spool (a checkpoint must first count it): the next start replays it.
  child.proc.kill('SIGKILL');
  await child.exited;
  const t1 = Date.now();
  child = await spawnService(env, undefined, containerCommand());
  const startedInMs = Date.now() - t1;
  const replayWorst = await worstHealthz(child, new Promise((r) => setTimeout(r, 1000)));
  console.log(
    JSON.stringify({
      restart: true,
      startedInMs,
      worstHealthzMsAfterStart: replayWorst,
      replayed: child.logs().includes('spool replayed'),
    }),
  );
} finally {
  child.proc.kill('SIGKILL');
  await child.exited;
  console.log(JSON.stringify({ flowRowsDelivered: delivered() }));
  rmSync(dir, { recursive: true, force: true });
}
