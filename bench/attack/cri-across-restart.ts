/**
 * node dist/bench/attack/cri-across-restart.js [--gap-ms 11000] [--signal SIGKILL|SIGTERM]
 *
 * A CRI partial line whose first piece is in one body and whose last piece is in the next, with
 * a restart between the two (kill -9, or SIGTERM as in a rollout), default extract.partialMaxAgeMs
 * (10 s) and spool.lockStaleMs (5 s). Fluent Bit sends the second body again when its retry comes
 * (its scheduler waits 5 to 10 s after the failed attempt, more after a 503 while the new process
 * starts): here `--gap-ms` after the first body. The next start replays the first piece with the
 * time it was received, gives the line up as partial_incomplete at its first checkpoint, and the
 * last piece then arrives alone: the flow is answered 200 twice and never reaches HubbleFlows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeAdx } from '../../test/support/fake-adx.js';
import { jsonLinesBody } from '../../test/support/fluent-bit-bodies.js';
import { K8S, flowLine, post, ready, serviceEnv, sleep, spawnSvc, stopHard, type Svc } from './harness.js';

const { values } = parseArgs({ options: { 'gap-ms': { type: 'string', default: '11000' }, signal: { type: 'string', default: 'SIGKILL' } } });
const adx = new FakeAdx();
await adx.start();
const root = mkdtempSync(join(tmpdir(), 'hubble-adx-attack-cri-'));
// The defaults for what this is about: partialMaxAgeMs 10 s, lockStaleMs 5 s.
const env = (port: number) => {
  const e = serviceEnv(adx.url, join(root, 'spool'), join(root, 'dead'), port, { HUBBLE_ADX_COVERAGE__WINDOW_SECONDS: '60' });
  delete e.HUBBLE_ADX_SPOOL__LOCK_STALE_MS;
  return e;
};
const procs: Svc[] = [];
try {
  const a = spawnSvc(env);
  procs.push(a);
  if (!(await ready(a))) throw new Error(a.out());
  const line = flowLine('CRI-SPLIT');
  const cut = Math.floor(line.length / 2);
  const rec = (log: string, logtag?: string) => ({ log, ...(logtag ? { logtag } : {}), stream: 'stdout', kubernetes: K8S });
  const first = jsonLinesBody([rec(flowLine('CRI-BEFORE')), rec(line.slice(0, cut), 'P')]);
  const second = jsonLinesBody([rec(line.slice(cut), 'F'), rec(flowLine('CRI-AFTER'))]);
  const t0 = Date.now();
  const r1 = await post(a, first);
  await sleep(300);
  a.child.kill(values.signal as NodeJS.Signals);
  await a.exit;
  const b = spawnSvc(env);
  procs.push(b);
  if (!(await ready(b))) throw new Error(b.out());
  const readyAfter = Date.now() - t0;
  await sleep(Math.max(0, t0 + Number(values['gap-ms']) - Date.now()));
  const r2 = await post(b, second);
  // Everything delivered, the window closed: a clean stop.
  await sleep(1500);
  b.child.kill('SIGTERM');
  await b.exit;
  const uuids = adx.table('HubbleFlows').map((r) => r.Uuid as string);
  const dead = adx.table('HubbleDeadLetters').map((r) => `${String(r.Reason)}: ${String(r.RawData).slice(0, 60)}`);
  const coverage = new Map<string, Record<string, unknown>>();
  for (const r of adx.table('HubbleCoverage')) coverage.set(`${r.RunId}/${r.WindowSequence}`, r);
  const seen = [...coverage.values()].reduce((s, r) => s + Number(r.FlowsSeen ?? 0), 0);
  const result = {
    signal: values.signal,
    answers: [r1.status, r2.status],
    secondProcessReadyAfterMs: readyAfter,
    secondBodyAfterMs: Number(values['gap-ms']),
    flowRows: [...new Set(uuids)].sort(),
    deadLetters: dead,
    coverageFlowsSeen: seen,
    flowsSent: 3,
  };
  console.log(JSON.stringify(result, null, 2));
  const ok = uuids.includes('CRI-SPLIT') && seen === 3;
  console.log(ok ? 'cri-across-restart: the line was joined across the restart' : 'cri-across-restart: FAILED: the split flow is not in HubbleFlows (or coverage does not count 3 flows)');
  process.exitCode = ok ? 0 : 1;
} finally {
  for (const p of procs) await stopHard(p);
  await adx.stop();
  rmSync(root, { recursive: true, force: true });
}
