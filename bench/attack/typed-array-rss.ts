/**
 * node dist/bench/attack/typed-array-rss.js [--bodies 3] [--per-record 2000000] [--records 4]
 *
 * msgpackr's typed-array extension (0x74) is one msgpack value however many elements it holds, so
 * limits.maxValuesPerRequest does not see it. Bodies of maxBodyBytes made of such records (each
 * under limits.maxRecordBytes), a few at once, as the image runs (its NODE_OPTIONS, the local
 * sink): the peak RSS against the DaemonSet's 384 MiB limit (test/hostile/image-limits.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnService } from '../../test/support/child-service.js';
import { containerNodeOptions } from '../../test/support/container-node-options.js';
import { flowEvent, typedArray } from '../../test/support/msgpack-extensions.js';

const CONTAINER_LIMIT_MIB = 384;
const { values } = parseArgs({ options: { bodies: { type: 'string', default: '3' }, 'per-record': { type: 'string', default: '2000000' }, records: { type: 'string', default: '4' } } });
const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-typed-'));
const child = await spawnService({ NODE_OPTIONS: containerNodeOptions(), HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'), HUBBLE_ADX_SINK__TYPE: 'local', HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'out') });
let peak = 0;
const sampler = setInterval(() => {
  try {
    peak = Math.max(peak, child.peakRssMiB());
  } catch {
    // exited
  }
}, 100);
try {
  const per = Number(values['per-record']);
  const n = Number(values.records);
  const statuses = await Promise.all(
    Array.from({ length: Number(values.bodies) }, async (_, j) => {
      const body = Buffer.concat(Array.from({ length: n }, (_, i) => flowEvent(`typed-${j}-${i}`, typedArray(per), 1_795_161_600 + i)));
      const r = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body, headers: { 'content-type': 'application/msgpack' }, signal: AbortSignal.timeout(90_000) }).then(
        (x) => x.status,
        (e: Error) => e.name,
      );
      return r;
    }),
  );
  // The parked ones are made into rows after the answers.
  for (let i = 0; i < 150 && child.proc.exitCode === null && child.proc.signalCode === null; i++) await new Promise((r) => setTimeout(r, 200));
  const alive = child.proc.exitCode === null && child.proc.signalCode === null;
  console.log(JSON.stringify({ statuses, alive, exit: alive ? null : [child.proc.exitCode, child.proc.signalCode], peakRssMiB: Math.round(peak), containerLimitMiB: CONTAINER_LIMIT_MIB }));
  process.exitCode = peak > CONTAINER_LIMIT_MIB || !alive ? 1 : 0;
} finally {
  clearInterval(sampler);
  child.proc.kill('SIGKILL');
  await child.exited;
  rmSync(dir, { recursive: true, force: true });
}
