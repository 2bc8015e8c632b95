/**
 * node dist/bench/attack/json-maps.js [--bodies 1] [--keys-per-object 1]
 *
 * limits.maxValuesPerRequest counts JSON objects and arrays by their brackets, and the docs size the
 * limits on "decoded values take up to about 7 times their text". An object whose keys no other
 * object has costs V8 a hidden class (Map, descriptors, transition) besides the object and its key:
 * about 15 times its text. A body of maxDecompressedBytes (as one request, under every limit:
 * records under maxRecordBytes, containers under maxValuesPerRequest, the rest numbers that are
 * not small integers, 6 times their text) holds ~95 MB of heap once decoded, under the image's
 * 128 MB heap. The image's NODE_OPTIONS, the Dockerfile's CMD config, the local sink.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { spawnService } from '../../test/support/child-service.js';
import { containerCommand, containerNodeOptions } from '../../test/support/container-node-options.js';
import { mapsBody } from './json-maps-body.js';

const { values } = parseArgs({
  options: {
    bodies: { type: 'string', default: '1' },
    'keys-per-object': { type: 'string', default: '1' },
    gzip: { type: 'boolean', default: false },
  },
});

const CONTAINER_LIMIT_MIB = 384;
const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-maps-'));
const child = await spawnService(
  {
    NODE_OPTIONS: containerNodeOptions(),
    HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
    HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'out'),
  },
  undefined,
  containerCommand(),
);
let peak = 0;
const sampler = setInterval(() => {
  try {
    const p = child.peakRssMiB();
    if (p > 0) peak = Math.max(peak, p);
  } catch {
    // exited
  }
}, 100);
try {
  const per = Number(values['keys-per-object']);
  const statuses = await Promise.all(
    Array.from({ length: Number(values.bodies) }, async (_, j) => {
      const plain = mapsBody(`b${j}k`, per);
      const body = values.gzip ? gzipSync(plain) : plain;
      const headers: Record<string, string> = {
        'content-type': 'application/x-ndjson',
        ...(values.gzip ? { 'content-encoding': 'gzip' } : {}),
      };
      return fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body, headers, signal: AbortSignal.timeout(60_000) }).then(
        async (x) => `${x.status} ${(await x.text()).slice(0, 120)} (${plain.length} bytes inflated, ${body.length} sent)`,
        (e: unknown) => (e as Error).name,
      );
    }),
  );
  for (let i = 0; i < 25 && child.proc.exitCode === null && child.proc.signalCode === null; i++)
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
      oom: /heap out of memory|Allocation failed/.test(logs),
    }),
  );
  if (!alive)
    console.log(
      logs
        .split('\n')
        .filter((l) => /FATAL|heap|Allocation|Mark-Compact|Scavenge/.test(l))
        .slice(-8)
        .join('\n'),
    );
  process.exitCode = peak > CONTAINER_LIMIT_MIB || !alive ? 1 : 0;
} finally {
  clearInterval(sampler);
  child.proc.kill('SIGKILL');
  await child.exited;
  rmSync(dir, { recursive: true, force: true });
}
