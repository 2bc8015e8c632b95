/**
 * node dist/bench/attack/frozen-sigterm.js [--trials 6] [--order term-first|cont-first]
 *
 * A process A frozen (SIGSTOP) past the lock's stale time, a second process B started on the same
 * spool and ready, then A resumed with a SIGTERM (the kubelet stopping the old pod): sent while A is
 * still stopped (delivered at the resume), or right after SIGCONT. A lost the spool; its drain must
 * touch nothing of B's: B's lock stays, no stopped-cleanly.json appears in B's directory, B stays up.
 * Reports, per trial, A's exit, whether B's lock and B survived, and whether the marker appeared.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeAdx } from '../../test/support/fake-adx.js';
import { flowsBody, post, ready, serviceEnv, sleep, spawnSvc, stopHard, type Svc } from './harness.js';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '6' }, order: { type: 'string', default: 'term-first' } } });
const adx = new FakeAdx();
await adx.start();
let bad = 0;
for (let t = 0; t < Number(values.trials); t++) {
  const root = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-term-'));
  const spool = join(root, 'spool');
  const env = (port: number) => serviceEnv(adx.url, spool, join(root, 'dead'), port);
  const all: Svc[] = [];
  try {
    const a = spawnSvc(env);
    all.push(a);
    if (!(await ready(a))) throw new Error(`A not ready: ${a.out().slice(-2000)}`);
    for (let i = 0; i < 5; i++) await post(a, flowsBody([`T${t}-${i}`]));
    a.child.kill('SIGSTOP');
    const b = spawnSvc(env);
    all.push(b);
    if (!(await ready(b))) throw new Error(`B not ready: ${b.out().slice(-2000)}`);
    // B is the owner now, and has already removed the marker of the run before it.
    const markerBefore = existsSync(join(spool, 'stopped-cleanly.json'));
    if (values.order === 'term-first') {
      a.child.kill('SIGTERM');
      a.child.kill('SIGCONT');
    } else {
      a.child.kill('SIGCONT');
      a.child.kill('SIGTERM');
    }
    const aExit = await Promise.race([a.exit, sleep(10_000).then(() => null)]);
    const lockAfterA = existsSync(join(spool, 'spool.lock'));
    const markerAfterA = existsSync(join(spool, 'stopped-cleanly.json'));
    // B refreshes its lock every second (stale 2 s): a removed lock is found compromised then.
    await sleep(3000);
    const bAlive = b.child.exitCode === null && b.child.signalCode === null;
    const bPost = bAlive ? (await post(b, flowsBody([`T${t}-after`]))).status : null;
    const wrong = !lockAfterA || (markerAfterA && !markerBefore) || !bAlive || bPost !== 200;
    if (wrong) bad++;
    console.log(JSON.stringify({ trial: t, order: values.order, aExit, bLockKeptAfterA: lockAfterA, markerBefore, markerWrittenByA: markerAfterA && !markerBefore, bAliveAfter3s: bAlive, bExit: bAlive ? null : { code: b.child.exitCode, signal: b.child.signalCode }, bPost }));
    if (!bAlive) console.log(`  B's log:\n${b.out().slice(-1500)}`);
  } finally {
    for (const p of all) await stopHard(p);
    rmSync(root, { recursive: true, force: true });
  }
}
await adx.stop();
console.log(`frozen-sigterm: ${bad} of ${values.trials} trials where A's drain, after it lost the spool, touched B's lock or directory`);
process.exitCode = bad > 0 ? 1 : 0;
