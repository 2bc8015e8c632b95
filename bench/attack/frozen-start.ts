/**
 * node dist/bench/attack/frozen-start.js [--trials 6]
 *
 * A start frozen (SIGSTOP) right after it took its epoch, before its recovery listed the spool,
 * resumed (SIGCONT) after a later start took the spool over and answered 200: the frozen one's
 * recovery deletes the later owner's segments as "stray" before it finds out it lost the spool.
 * ADX is down meanwhile (nothing delivered yet); the later owner is then killed (kill -9) and a
 * third start recovers the spool. Flows the second owner answered 200 for never reach ADX.
 *
 * The freeze is sent as soon as the epoch directory appears (inotify); a large resends.log (what a
 * busy node's looks like) keeps the start between those two steps for a few milliseconds.
 */
import { watch, mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeAdx } from '../../test/support/fake-adx.js';
import { flowsBody, post, ready, serviceEnv, sleep, spawnSvc, stopHard, type Svc } from './harness.js';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '6' } } });
const adx = new FakeAdx();
await adx.start();
let lostTotal = 0;
let hits = 0;
const trials = Number(values.trials);
for (let t = 0; t < trials; t++) {
  const root = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-frozen-'));
  const spool = join(root, 'spool');
  const env = (port: number) => serviceEnv(adx.url, spool, join(root, 'dead'), port);
  const procs: Svc[] = [];
  try {
    adx.reset();
    // Run 1: takes epoch 1 (writes a fence), delivers a body, dies.
    const first = spawnSvc(env);
    procs.push(first);
    if (!(await ready(first))) throw new Error(`run 1 did not start\n${first.out()}`);
    await post(first, flowsBody([`T${t}-warmup`]));
    await sleep(500);
    await stopHard(first);
    // What a busy node's resends.log holds: many delivered digests.
    const until = Date.now() + 900_000;
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) lines.push(`${randomBytes(16).toString('base64')} ${until}`);
    writeFileSync(join(spool, 'resends.log'), lines.join('\n') + '\n');
    adx.down = true;

    // Run 2 starts; frozen as soon as it takes its epoch.
    mkdirSync(join(spool, 'epochs'), { recursive: true });
    const before = new Set(readdirSync(join(spool, 'epochs')));
    const a = spawnSvc(env);
    procs.push(a);
    let frozenAt = '';
    const w = watch(join(spool, 'epochs'), (_e, name) => {
      if (!frozenAt && name && !before.has(name) && /^\d+$/.test(name)) {
        a.child.kill('SIGSTOP');
        frozenAt = name;
      }
    });
    for (const end = Date.now() + 15_000; !frozenAt && Date.now() < end; ) await sleep(5);
    w.close();
    if (!frozenAt) throw new Error('run 2 never took an epoch');

    // Run 3 takes the spool over (run 2's lock goes stale) and answers 200 for flows ADX cannot take yet.
    const b = spawnSvc(env);
    procs.push(b);
    if (!(await ready(b))) throw new Error(`run 3 did not start\n${b.out()}`);
    const answered: string[] = [];
    const x = Array.from({ length: 20 }, (_, i) => `T${t}-X${i}`);
    if ((await post(b, flowsBody(x))).status === 200) answered.push(...x);
    const bSegments = readdirSync(spool).filter((f) => f.endsWith('.wal') && !f.endsWith(`-e${frozenAt}.wal`));

    // Run 2 resumes: it must answer nothing and exit 75, touching nothing of run 3's.
    a.child.kill('SIGCONT');
    const aExit = await Promise.race([a.exit, sleep(10_000).then(() => null)]);
    const segmentsLeft = readdirSync(spool).filter((f) => bSegments.includes(f));
    // Run 3 still answers (its owner check looks only for a later epoch than its own).
    const y = Array.from({ length: 20 }, (_, i) => `T${t}-Y${i}`);
    const late = await post(b, flowsBody(y));
    if (late.status === 200) answered.push(...y);

    // Run 3 is killed with everything in its spool; run 4 recovers and ADX comes back.
    await stopHard(b);
    adx.down = false;
    const c = spawnSvc(env);
    procs.push(c);
    if (!(await ready(c))) throw new Error(`run 4 did not start\n${c.out()}`);
    const stored = () => new Set(adx.table('HubbleFlows').map((r) => r.Uuid as string));
    let missing = answered;
    for (const end = Date.now() + 20_000; Date.now() < end; await sleep(200)) {
      const have = stored();
      missing = answered.filter((u) => !have.has(u));
      if (missing.length === 0) break;
    }
    if (segmentsLeft.length < bSegments.length) hits++;
    lostTotal += missing.length;
    console.log(
      JSON.stringify({
        trial: t,
        frozenEpoch: frozenAt,
        frozenExit: aExit,
        run3Segments: bSegments,
        run3SegmentsLeftAfterResume: segmentsLeft,
        answered200: answered.length,
        missingFromAdx: missing.length,
      }),
    );
  } finally {
    for (const p of procs) await stopHard(p);
    rmSync(root, { recursive: true, force: true });
  }
}
await adx.stop();
console.log(`frozen-start: ${hits}/${trials} trials had run 3's segments deleted by the resumed run 2; ${lostTotal} flows answered 200 never reached ADX`);
process.exitCode = lostTotal > 0 ? 1 : 0;
