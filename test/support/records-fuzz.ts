/**
 * The hostile-records generator for as long as asked (`npm run fuzz -- --generator records`): bodies
 * to the built service as the image runs it (live), and one in `parkedEvery` to the service in this
 * process behind a blocked sink (parked). Every body is checked as in the property test; what does
 * not hold is counted and logged, and the run goes on (a crashed child is started again).
 */
import fc from 'fast-check';
import { hostileBody, type HostileBody } from './hostile-records.js';
import { checkBody, childTarget, coverageProblems, coverageRows, inProcessTarget, Violation, type Target } from './hostile-targets.js';

export interface RecordsFuzzOptions {
  bodies: number;
  maxSeconds: number;
  seed: number;
  /** One body in this many goes to the parked target (0: none). */
  parkedEvery: number;
  log?: (line: string) => void;
}

export interface RecordsFuzzReport {
  generator: 'records';
  seed: number;
  bodies: number;
  records: number;
  parked: number;
  deferred: number;
  seconds: number;
  statuses: Record<string, number>;
  crashes: number;
  unexpected5xx: number;
  prototypeChanged: number;
  undelivered: number;
  coverageRows: number;
  coverageProblems: number;
  peakRssMiB: number;
}

export async function recordsFuzz(o: RecordsFuzzOptions): Promise<RecordsFuzzReport> {
  const report: RecordsFuzzReport = {
    generator: 'records', seed: o.seed, bodies: 0, records: 0, parked: 0, deferred: 0, seconds: 0, statuses: {}, crashes: 0, unexpected5xx: 0,
    prototypeChanged: 0, undelivered: 0, coverageRows: 0, coverageProblems: 0, peakRssMiB: 0,
  };
  const live = await childTarget();
  const parked = o.parkedEvery > 0 ? await inProcessTarget(true) : null;
  const started = Date.now();
  try {
    for (let chunk = 0; report.bodies < o.bodies && Date.now() - started < o.maxSeconds * 1000; chunk++) {
      const bodies = fc.sample(hostileBody, { seed: o.seed + chunk, numRuns: Math.min(50, o.bodies - report.bodies) });
      for (const b of bodies) {
        if (Date.now() - started >= o.maxSeconds * 1000) break;
        const toParked = parked !== null && report.bodies % o.parkedEvery === 0;
        await one(toParked ? parked : live, b, report, o.log);
        if (toParked) report.parked++;
        report.bodies++;
        report.records += b.records;
        if (live.alive()) report.peakRssMiB = Math.max(report.peakRssMiB, live.peakRssMiB());
        if (report.bodies % 1000 === 0) o.log?.(`${report.bodies} bodies, ${report.records} records, peak RSS ${report.peakRssMiB.toFixed(0)} MiB`);
      }
    }
  } finally {
    report.seconds = (Date.now() - started) / 1000;
    for (const t of [live, parked]) {
      if (!t) continue;
      report.coverageRows += coverageRows(t.dataDir);
      report.coverageProblems += coverageProblems(t.dataDir).length;
      await t.stop();
    }
  }
  return report;
}

async function one(t: Target, b: HostileBody, report: RecordsFuzzReport, log?: (line: string) => void): Promise<void> {
  try {
    const r = await checkBody(t, b);
    report.statuses[r.status] = (report.statuses[r.status] ?? 0) + 1;
    if (r.deferred) report.deferred++;
  } catch (err) {
    const message = (err as Error).message;
    log?.(`${t.name}: ${message.slice(0, 2000)}`);
    if (!(err instanceof Violation)) report.statuses.connection_error = (report.statuses.connection_error ?? 0) + 1;
    if (/^5\d\d for /.test(message)) report.unexpected5xx++;
    else if (/Object\.prototype changed/.test(message)) report.prototypeChanged++;
    else if (/valid flow/.test(message)) report.undelivered++;
    if (!t.alive()) {
      report.crashes++;
      await t.restart?.();
    }
  }
}
