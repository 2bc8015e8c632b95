/**
 * node dist/bench/attack/frozen-exit.js [--trials 10] [--seed 1]
 *
 * A process frozen (SIGSTOP) at a random moment of its life (start-up included), a second one
 * started on the same spool, then the first resumed (SIGCONT): it must exit (75, or 1 when it had
 * not taken the lock yet) and answer nothing more. Reports how long each resumed process took to
 * exit, what it answered after it resumed, and its last log lines when it did not exit in 8 s.
 * --young: freeze a process in its first 3 s, just started after a kill -9 of the one before.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeAdx } from '../../test/support/fake-adx.js';
import { flowsBody, post, ready, serviceEnv, sleep, spawnSvc, stopHard, type Svc } from './harness.js';

const { values } = parseArgs({
  options: { trials: { type: 'string', default: '10' }, seed: { type: 'string', default: '1' }, 'log-level': { type: 'string', default: 'warn' }, young: { type: 'boolean', default: false } },
});
let s = Number(values.seed) >>> 0;
const rnd = () => {
  s = (s + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const adx = new FakeAdx();
await adx.start();
const root = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-exit-'));
const env = (port: number) => serviceEnv(adx.url, join(root, 'spool'), join(root, 'dead'), port, { HUBBLE_ADX_LOG__LEVEL: values['log-level']! });
let stuck = 0;
let answeredAfterResume = 0;
let current: Svc = spawnSvc(env);
const all: Svc[] = [current];
try {
  await ready(current);
  for (let t = 0; t < Number(values.trials); t++) {
    // --young: the process to freeze was just started after a kill -9 of the one before (as the
    // torture does): it is frozen while it waits for the dead one's lock, or recovers.
    if (values.young) {
      await stopHard(current);
      current = spawnSvc(env);
      all.push(current);
    }
    const a = current;
    const at = rnd() * (values.young ? 3000 : 1500);
    // A stream of posts to the first process while it lives.
    let n = 0;
    let stop = false;
    let resumedAt = Infinity;
    const poster = (async () => {
      while (!stop) {
        const r = await post(a, flowsBody([`E${t}-${n++}`]), 'application/x-ndjson', 3000);
        if (r.status === 200 && Date.now() > resumedAt + 50) answeredAfterResume++;
        await sleep(20);
      }
    })();
    await sleep(at);
    a.child.kill('SIGSTOP');
    const b = spawnSvc(env);
    all.push(b);
    const bReady = await ready(b);
    if (!bReady) console.log(`  the second process is not ready after 30 s (exit ${JSON.stringify(b.child.exitCode ?? b.child.signalCode)}); its log:\n${b.out().slice(-3000)}`);
    a.child.kill('SIGCONT');
    resumedAt = Date.now();
    const exited = await Promise.race([a.exit, sleep(8000).then(() => null)]);
    stop = true;
    await poster;
    const took = Date.now() - resumedAt;
    if (!exited) stuck++;
    console.log(JSON.stringify({ trial: t, frozenAfterMs: Math.round(at), secondReady: bReady, exit: exited, msToExit: exited ? took : null }));
    if (!exited) {
      let state = '?';
      try {
        state = /State:\s+(.*)/.exec(readFileSync(`/proc/${a.child.pid}/status`, 'utf8'))![1]!;
      } catch {
        // gone
      }
      const later = await Promise.race([a.exit, sleep(20_000).then(() => null)]);
      console.log(`  state ${state}; 20 s later: ${JSON.stringify(later)}; its log:\n${a.out().slice(-3000)}`);
    }
    await stopHard(a);
    current = b;
  }
} finally {
  for (const p of all) await stopHard(p);
  await adx.stop();
  rmSync(root, { recursive: true, force: true });
}
console.log(`frozen-exit: ${stuck} resumed processes still running 8 s after SIGCONT; ${answeredAfterResume} answers 200 after resuming`);
process.exitCode = stuck > 0 || answeredAfterResume > 0 ? 1 : 0;
