/**
 * Crash torture: the real service (its own process, the image's V8 flags, the real ADX SDK against
 * the local ADX protocol server) is killed at random moments while clients post bodies of unique
 * flows and retry each until it is answered 200, as Fluent Bit does. After each cycle the clients
 * pause and the run checks that every flow answered 200 reached ADX, and that HubbleCoverage
 * counted every acknowledged flow exactly once. Seeded: a failing seed replays the same faults.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeAdx } from './fake-adx.js';
import { jsonLinesBody, msgpackBody } from './fluent-bit-bodies.js';
import { projectRoot } from './project-root.js';

export interface TortureOptions {
  seed: number;
  cycles: number;
  /** Clients posting at once, each its own stream of bodies (its CRI partial lines stay in order). */
  lanes: number;
  flowsPerBody: number;
  /** V8 flags of the service (the Dockerfile's). */
  nodeOptions: string;
  /** Mount a small tmpfs for the spool and fill it to make writes fail (root only). */
  tmpfs: boolean;
  /** Pause the clients and check every this many cycles (and after the last). */
  checkEvery: number;
  /** How long the clients post in a cycle before its fault, at random between these (ms). */
  trafficMs: [number, number];
  /** Only these faults (sigterm, sigstop, enospc, kill9), chosen evenly; all by default. */
  only?: readonly ('sigterm' | 'sigstop' | 'enospc' | 'kill9')[];
  log?: (line: string) => void;
}

export interface TortureReport {
  seed: number;
  cycles: number;
  seconds: number;
  faults: Record<string, number>;
  /** Bodies answered 200, of which as a resend (the same body spooled before). */
  bodiesAcknowledged: number;
  resendAnswers: number;
  flowsAcknowledged: number;
  deniedAcknowledged: number;
  allowedAcknowledged: number;
  /** Acknowledged denied flows missing from HubbleFlows at a check (summed over checks: must be 0). */
  lost: number;
  /** Allowed flows missing: acknowledged, but neither in an aggregate row nor sampled out (must be 0). */
  allowedMissing: number;
  /** Rows of denied flows stored more than once (at least once: allowed, counted). */
  duplicateRows: number;
  deniedRows: number;
  /** Checks where ΣFlowsSeen of the coverage rows differed from the acknowledged flows. */
  coverageMismatches: { check: number; seen: number; acknowledged: number }[];
  coverageSeen: number;
  /** Exits other than the kills, clean stops and lost locks the run caused. */
  unexpectedExits: string[];
  checks: number;
  enospc: 'tmpfs' | 'unavailable';
}

/** mulberry32: a small seeded generator, so that a seed replays the same faults. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLI = join(projectRoot(), 'dist', 'src', 'cli.js');

interface Proc {
  child: ChildProcess;
  port: number;
  ready: Promise<boolean>;
  exit: Promise<{ code: number | null; signal: string | null }>;
  /** How the run ended it, so that its exit can be judged. */
  endedBy: 'kill' | 'term' | 'lock' | null;
  out: string;
  /** It answered /readyz 200: it had taken the spool. */
  wasReady: boolean;
  variant: Variant;
}

/** How one start is configured. */
interface Variant {
  tight: boolean;
  aggregate: boolean;
  oneIn: number;
}

/** One client's bodies, each with the flows it completes (its last line may end in the next body). */
interface Body {
  data: Buffer;
  type: string;
  denied: string[];
  allowed: string[];
}

/** How one start is configured. */
interface Variant {
  tight: boolean;
  aggregate: boolean;
  oneIn: number;
}

/** One client's bodies, made as they are needed: each with the flows it completes (its last line may end in the next body). */
class Lane {
  private readonly k8s: Record<string, string>;
  private carry: { rest: string; uuid: string; denied: boolean } | null = null;
  private made = 0;
  current: Body;

  constructor(
    private readonly lane: number,
    private readonly flowsPerBody: number,
    private readonly rnd: () => number,
  ) {
    this.k8s = { namespace_name: 'kube-system', pod_name: `cilium-lane-${lane}`, container_name: 'cilium-agent' };
    this.current = this.make();
  }

  /** The body after the current one (which was answered 200). */
  next(): void {
    this.current = this.make();
  }

  private make(): Body {
    const { lane, flowsPerBody, rnd, k8s } = this;
    const b = this.made++;
    const records: Record<string, unknown>[] = [];
    const denied: string[] = [];
    const allowed: string[] = [];
    if (this.carry) {
      records.push({ log: this.carry.rest, logtag: 'F', stream: 'stdout', kubernetes: k8s });
      (this.carry.denied ? denied : allowed).push(this.carry.uuid);
      this.carry = null;
    }
    records.push({ log: 'level=info msg="regenerating endpoints" subsys=endpoint-manager', stream: 'stdout', kubernetes: k8s });
    for (let f = 0; f < flowsPerBody; f++) {
      const uuid = `L${lane}-B${b}-F${f}`;
      const isDenied = f % 3 === 0;
      const flow = {
        time: new Date().toISOString(),
        uuid,
        verdict: isDenied ? 'DROPPED' : 'FORWARDED',
        ...(isDenied ? { drop_reason_desc: 'POLICY_DENIED' } : {}),
        IP: { source: `10.${lane}.${b % 250}.${f % 250}`, destination: '10.200.0.1', ipVersion: 'IPv4' },
        l4: { TCP: { source_port: 1024 + ((b * flowsPerBody + f) % 60000), destination_port: 443 } },
        source: { namespace: 'shop', pod_name: `web-${lane}` },
        destination: { namespace: 'db', pod_name: 'pg-0' },
      };
      const line = JSON.stringify({ flow, node_name: 'torture/node', time: flow.time });
      // The last line of most bodies is cut: its final piece opens the next body (a CRI partial line).
      if (f === flowsPerBody - 1 && rnd() < 0.6) {
        const at = 20 + Math.floor(rnd() * (line.length - 40));
        records.push({ log: line.slice(0, at), logtag: 'P', stream: 'stdout', kubernetes: k8s });
        this.carry = { rest: line.slice(at), uuid, denied: isDenied };
        continue;
      }
      records.push({ log: line, stream: 'stdout', kubernetes: k8s });
      (isDenied ? denied : allowed).push(uuid);
    }
    const msgpack = rnd() < 0.5;
    return { data: msgpack ? msgpackBody(records) : jsonLinesBody(records), type: msgpack ? 'application/msgpack' : 'application/x-ndjson', denied, allowed };
  }
}

function tryMountTmpfs(dir: string, bytes: number): boolean {
  if (process.getuid?.() !== 0) return false;
  mkdirSync(dir, { recursive: true });
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]).status === 0;
}

/**
 * Allowed flows ADX accounts for: folded into aggregate rows (each row once, by Uuid), on rows of
 * their own (a start with aggregation off), or counted as sampled out. Equal to the allowed flows
 * answered 200 when none is lost and none is on two rows.
 */
function allowedAccounted(flows: readonly Record<string, unknown>[], coverage: readonly Record<string, unknown>[]): number {
  const folded = new Map<string, number>();
  const single = new Set<string>();
  for (const r of flows) {
    if (r.AggregatedFlows !== null && r.AggregatedFlows !== undefined) folded.set(r.Uuid as string, Number(r.AggregatedFlows));
    else if (r.Verdict === 'FORWARDED') single.add(r.Uuid as string);
  }
  let n = single.size;
  for (const v of folded.values()) n += v;
  for (const c of coverage) n += Number(c.FlowsSampledOut ?? 0);
  return n;
}

export async function torture(o: TortureOptions): Promise<TortureReport> {
  const rnd = prng(o.seed);
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const adx = new FakeAdx({ HubbleFlows: ['Uuid', 'Verdict', 'AggregatedFlows', 'RunId', 'CoverageWindow'] });
  await adx.start();
  const root = mkdtempSync(join(tmpdir(), 'hubble-adx-torture-'));
  const spoolRoot = join(root, 'spool-fs');
  const tmpfsBytes = 24 * 1024 * 1024;
  const mounted = o.tmpfs && tryMountTmpfs(spoolRoot, tmpfsBytes);
  const spool = join(spoolRoot, 'spool');
  const filler = join(spoolRoot, 'filler');
  const faults: Record<string, number> = {};
  const fault = (k: string) => (faults[k] = (faults[k] ?? 0) + 1);
  const unexpectedExits: string[] = [];
  const procs: Proc[] = [];
  let current: Proc | null = null;

  const env = (port: number, v: Variant): Record<string, string> => ({
    PATH: process.env.PATH ?? '',
    // Diagnosing (HUBBLE_ADX_TORTURE_LOG_LEVEL set): a process still running when it should not be
    // is asked for Node's diagnostic report (pending handles and requests) before it is killed.
    NODE_OPTIONS: process.env.HUBBLE_ADX_TORTURE_LOG_LEVEL ? `${o.nodeOptions} --report-on-signal --report-signal=SIGUSR2 --report-directory=${root}` : o.nodeOptions,
    NODE_NAME: 'torture-node',
    HUBBLE_ADX_SERVER__PORT: String(port),
    HUBBLE_ADX_SERVER__RETRY_AFTER_SECONDS: '1',
    // Raised (HUBBLE_ADX_TORTURE_LOG_LEVEL=info) to see what a failing process was doing.
    HUBBLE_ADX_LOG__LEVEL: process.env.HUBBLE_ADX_TORTURE_LOG_LEVEL ?? 'warn',
    HUBBLE_ADX_SINK__TYPE: 'kusto',
    HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: adx.url,
    HUBBLE_ADX_SINK__KUSTO__DATABASE: 'hubble',
    HUBBLE_ADX_SINK__KUSTO__AUTH: 'none',
    HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_DIRECTORY: join(root, 'dead'),
    HUBBLE_ADX_SPOOL__DIRECTORY: spool,
    HUBBLE_ADX_SPOOL__MAX_BYTES: String(16 * 1024 * 1024),
    HUBBLE_ADX_SPOOL__SEGMENT_BYTES: String(256 * 1024),
    HUBBLE_ADX_SPOOL__LOCK_STALE_MS: '2000',
    HUBBLE_ADX_COVERAGE__WINDOW_SECONDS: '1',
    HUBBLE_ADX_AGGREGATION__ENABLED: String(v.aggregate),
    HUBBLE_ADX_AGGREGATION__WINDOW_SECONDS: '1',
    HUBBLE_ADX_SAMPLING__ALLOWED_ONE_IN: String(v.oneIn),
    HUBBLE_ADX_EXTRACT__PARTIAL_MAX_AGE_MS: '600000',
    HUBBLE_ADX_BATCH__MAX_AGE_MS: '100',
    HUBBLE_ADX_RETRY__MIN_DELAY_MS: '20',
    HUBBLE_ADX_RETRY__MAX_DELAY_MS: '200',
    HUBBLE_ADX_SHUTDOWN__GRACE_MS: '2000',
    // Some starts run with tight bounds, as after an operator's config change: room for a few
    // requests' rows (a backlog is made into rows again in many stops for room) and one aggregate
    // row at a time (aggregates taken before every slice), so that crashes land in the middle of
    // a backlog being folded again.
    ...(v.tight ? { HUBBLE_ADX_AGGREGATION__MAX_KEYS: '1', HUBBLE_ADX_BATCH__MAX_PENDING_ROWS: '60' } : {}),
  });
  // Starts differ as after an operator's config change: aggregation off, or sampling 1 in 3 instead
  // of 2, in one start of five each; a backlog an earlier start counted is made into rows by a
  // start configured otherwise.
  const variant = (): Variant => {
    const v = { tight: rnd() < 0.3, aggregate: rnd() >= 0.2, oneIn: rnd() < 0.2 ? 3 : 2 };
    if (v.tight) fault('tight_bounds');
    if (!v.aggregate) fault('aggregation_off');
    if (v.oneIn === 3) fault('sampling_1_in_3');
    return v;
  };

  let nextPort = Math.floor(Math.random() * 10000);
  const spawnService = (v: Variant = variant()): Proc => {
    // Ports of their own, in turn: below the kernel's ephemeral range and apart from the 20000-49999
    // other tests pick at random (a port another test took made a start exit 1, EADDRINUSE).
    const port = 10000 + (nextPort++ % 10000);
    const child = spawn(process.execPath, [CLI, 'serve'], { env: env(port, v), stdio: ['ignore', 'pipe', 'pipe'] });
    const p: Proc = { child, port, endedBy: null, out: '', wasReady: false, ready: Promise.resolve(false), exit: Promise.resolve({ code: null, signal: null }), variant: v };
    child.stdout!.on('data', (d: Buffer) => (p.out = (p.out + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (p.out = (p.out + d.toString()).slice(-20_000)));
    p.exit = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
    p.ready = (async () => {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
        try {
          if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return (p.wasReady = true);
        } catch {
          // not listening yet
        }
        await sleep(50);
      }
      return false;
    })();
    void p.exit.then(({ code, signal }) => {
      // A SIGTERM before the process set up its handlers (still loading) ends it by the signal; a
      // process frozen before it had the lock finds it taken when it resumes and exits 1 at start,
      // one frozen after exits 75 at its next write.
      const expected =
        (p.endedBy === 'kill' && signal === 'SIGKILL') ||
        (p.endedBy === 'term' && (code === 0 || signal === 'SIGTERM')) ||
        (p.endedBy === 'lock' && (code === 75 || code === 1 || signal === 'SIGKILL'));
      if (!expected) unexpectedExits.push(`pid ${child.pid}: code ${code} signal ${signal} (ended by ${p.endedBy ?? 'nothing'})\n${p.out.slice(-3000)}`);
    });
    procs.push(p);
    return p;
  };

  // The clients.
  // Each client its own generator: the faults a seed makes do not depend on how fast clients post.
  const lanes = Array.from({ length: o.lanes }, (_, l) => new Lane(l, o.flowsPerBody, prng(o.seed * 1000 + l + 1)));
  const acknowledged = { bodies: 0, resends: 0, denied: new Set<string>(), allowed: new Set<string>() };
  let paused = false;
  let stopping = false;
  let inFlight = 0;
  const runLane = async (lane: Lane) => {
    let started = false;
    while (!stopping) {
      // Paused: no new body is begun, but one already sent is retried until it is answered 200,
      // as Fluent Bit does; a check compares only with bodies that were answered.
      if ((paused && !started) || !current) {
        await sleep(20);
        continue;
      }
      if (!started) inFlight++;
      started = true;
      const body = lane.current;
      const target = current;
      try {
        const res = await fetch(`http://127.0.0.1:${target.port}/`, { method: 'POST', body: body.data, headers: { 'content-type': body.type }, signal: AbortSignal.timeout(5000) });
        const answer = (await res.json().catch(() => ({}))) as { duplicate?: boolean };
        if (res.status === 200) {
          acknowledged.bodies++;
          if (answer.duplicate) acknowledged.resends++;
          for (const u of body.denied) acknowledged.denied.add(u);
          for (const u of body.allowed) acknowledged.allowed.add(u);
          lane.next();
          started = false;
          inFlight--;
          continue;
        }
      } catch {
        // refused, reset or timed out: Fluent Bit keeps the chunk and tries again
      }
      await sleep(30 + Math.random() * 70);
    }
  };
  const laneRuns = lanes.map((l) => runLane(l));

  const report: TortureReport = {
    seed: o.seed,
    cycles: 0,
    seconds: 0,
    faults,
    bodiesAcknowledged: 0,
    resendAnswers: 0,
    flowsAcknowledged: 0,
    deniedAcknowledged: 0,
    allowedAcknowledged: 0,
    lost: 0,
    allowedMissing: 0,
    duplicateRows: 0,
    deniedRows: 0,
    coverageMismatches: [],
    coverageSeen: 0,
    unexpectedExits,
    checks: 0,
    enospc: mounted ? 'tmpfs' : 'unavailable',
  };

  /** A healthy service, ADX up, clients paused: wait until everything acknowledged is in ADX, then compare. */
  const check = async (n: number): Promise<void> => {
    paused = true;
    adx.down = false;
    adx.delayEachMs = 0;
    rmSync(filler, { force: true });
    // A start with tight bounds makes a backlog of a thousand requests into rows for minutes: the
    // check runs on a start with the usual bounds (one more restart, a clean one).
    if (current && current.variant.tight && current.child.exitCode === null && current.child.signalCode === null) {
      current.endedBy = 'term';
      current.child.kill('SIGTERM');
      await current.exit;
      current = null;
    }
    if (!current || current.child.exitCode !== null || current.child.signalCode !== null) current = spawnService({ tight: false, aggregate: true, oneIn: 2 });
    await current.ready;
    // Bodies already sent are retried until answered: only then does the comparison hold.
    for (const end = Date.now() + 30_000; inFlight > 0 && Date.now() < end; ) await sleep(20);
    const stored = () => new Set(adx.table('HubbleFlows').map((r) => r.Uuid as string));
    const coverage = () => {
      const byWindow = new Map<string, Record<string, unknown>>();
      for (const r of adx.table('HubbleCoverage')) byWindow.set(`${r.RunId}/${r.WindowSequence}`, r);
      return [...byWindow.values()];
    };
    const sum = (rows: Record<string, unknown>[], k: string) => rows.reduce((s, r) => s + Number(r[k] ?? 0), 0);
    const flowsAcked = () => acknowledged.denied.size + acknowledged.allowed.size;
    const allowedMissing = () => acknowledged.allowed.size - allowedAccounted(adx.table('HubbleFlows'), coverage());
    // A start with tight bounds makes a backlog into rows slowly: the check waits as long as rows
    // keep arriving, and gives up 30 s after the last one (5 minutes at most).
    const cap = Date.now() + 300_000;
    let deadline = Date.now() + 30_000;
    let arrived = -1;
    let missing = 0;
    let seen = 0;
    let allowed = 0;
    for (;;) {
      const have = stored();
      missing = 0;
      for (const u of acknowledged.denied) if (!have.has(u)) missing++;
      seen = sum(coverage(), 'FlowsSeen');
      allowed = allowedMissing();
      if (missing === 0 && seen === flowsAcked() && allowed === 0) break;
      const rows = adx.table('HubbleFlows').length + adx.table('HubbleCoverage').length;
      if (rows !== arrived) {
        arrived = rows;
        deadline = Math.min(cap, Math.max(deadline, Date.now() + 30_000));
      }
      if (Date.now() > deadline) break;
      await sleep(200);
    }
    report.checks++;
    report.lost += missing;
    if ((seen !== flowsAcked() || allowed !== 0) && o.log) {
      // Which windows have flow rows but no coverage row (or the reverse): what HubbleReconcile shows.
      const cov = new Set(coverage().map((r) => `${r.RunId}/${r.WindowSequence}`));
      const rowsBy = new Map<string, number>();
      for (const r of adx.table('HubbleFlows')) {
        const k = `${r.RunId}/${r.CoverageWindow}`;
        rowsBy.set(k, (rowsBy.get(k) ?? 0) + 1);
      }
      const orphans = [...rowsBy].filter(([k]) => !cov.has(k));
      log(`  rows in windows without a coverage row: ${JSON.stringify(orphans)}`);
      const folded = new Map<string, number>();
      for (const r of adx.table('HubbleFlows')) if (r.AggregatedFlows !== null && r.AggregatedFlows !== undefined) folded.set(r.Uuid as string, Number(r.AggregatedFlows));
      log(`  coverage: aggregated ${sum(coverage(), 'FlowsAggregated')} sampled out ${sum(coverage(), 'FlowsSampledOut')} kept ${sum(coverage(), 'FlowsKept')}; aggregate rows fold ${[...folded.values()].reduce((a, b) => a + b, 0)} (${folded.size} rows); acknowledged allowed ${acknowledged.allowed.size}`);
      const byPrefix = new Map<string, number>();
      for (const [u, n] of folded) byPrefix.set(u.replace(/-\d+$/, ''), (byPrefix.get(u.replace(/-\d+$/, '')) ?? 0) + n);
      log(`  aggregates by checkpoint: ${JSON.stringify([...byPrefix].slice(-20))}`);
      const dead = new Map<string, number>();
      for (const r of adx.table('HubbleDeadLetters')) dead.set(String(r.Reason), (dead.get(String(r.Reason)) ?? 0) + 1);
      log(`  dead letters: ${JSON.stringify([...dead])}; coverage dead-lettered ${sum(coverage(), 'FlowsDeadLettered')}`);
      for (const q of procs.slice(-5)) log(`  pid ${q.child.pid} (ended by ${q.endedBy ?? 'nothing'}), its log's last lines:\n${q.out.slice(-2000)}`);
      for (const r of adx.table('HubbleDeadLetters').slice(-5)) log(`  dead letter ${String(r.RunId)} ${String(r.Reason)}: ${String(r.Message).slice(0, 200)} | ${String(r.RawData).slice(0, 200)}`);
      log(`  coverage rows: ${JSON.stringify(coverage().map((r) => [r.RunId, r.WindowSequence, r.FlowsSeen, r.WindowEndReason, r.PreviousRunEnd]).slice(-12))}`);
    }
    if (seen !== flowsAcked()) report.coverageMismatches.push({ check: n, seen, acknowledged: flowsAcked() });
    log(`[check ${n}] acknowledged ${flowsAcked()} flows (${acknowledged.denied.size} denied), denied missing ${missing}, allowed missing ${allowed}, coverage FlowsSeen ${seen}`);
    paused = false;
  };

  try {
    current = spawnService();
    await current.ready;
    for (let cycle = 1; cycle <= o.cycles; cycle++) {
      const p = current!;
      const spawnedAt = Date.now();
      const traffic = o.trafficMs[0] + rnd() * (o.trafficMs[1] - o.trafficMs[0]);
      const drawn = rnd();
      // Each fault owns a tenth of the draw (kill -9 the rest); `only` spreads the draw over its faults.
      const slot = { sigterm: 0.05, sigstop: 0.15, enospc: 0.25, kill9: 0.65 } as const;
      const r = o.only ? slot[o.only[Math.min(o.only.length - 1, Math.floor(drawn * o.only.length))]!] : drawn;
      // Sink faults ride along any cycle: an outage, or a slow ADX.
      if (rnd() < 0.25) {
        fault('adx_down');
        adx.down = true;
        setTimeout(() => (adx.down = false), rnd() * 1500);
      } else if (rnd() < 0.2) {
        fault('adx_slow');
        adx.delayEachMs = 50 + rnd() * 200;
      }
      if (r < 0.1) {
        fault('sigterm');
        await sleep(traffic);
        p.endedBy = 'term';
        p.child.kill('SIGTERM');
        await p.exit;
        current = spawnService();
      } else if (r < 0.2) {
        // Frozen past the lock's stale time: a second process takes the spool over; the first,
        // resumed, must answer nothing more and exit.
        fault('sigstop');
        await sleep(traffic / 2);
        p.child.kill('SIGSTOP');
        p.endedBy = 'lock';
        const owned = p.wasReady;
        current = spawnService();
        await current.ready;
        p.child.kill('SIGCONT');
        // One that had the spool finds out at once; one frozen before it took the lock (even before
        // it loaded its modules) finishes starting, then tries the lock for twice its stale time.
        const bound = owned ? 8000 : 20_000;
        const gone = await Promise.race([p.exit.then(() => true), sleep(bound).then(() => false)]);
        if (!gone) {
          let report = '';
          if (process.env.HUBBLE_ADX_TORTURE_LOG_LEVEL) {
            p.child.kill('SIGUSR2');
            await sleep(1000);
            report = readdirSync(root)
              .filter((f) => f.startsWith('report.') && f.includes(`.${p.child.pid}.`))
              .map((f) => readFileSync(join(root, f), 'utf8'))
              .join('\n');
          }
          unexpectedExits.push(`pid ${p.child.pid}: still running ${bound / 1000} s after it was resumed (${owned ? 'it had the spool' : 'starting'}), another process having taken the spool\n${p.out.slice(-3000)}${report ? `\n${report}` : ''}`);
          p.child.kill('SIGKILL');
        }
      } else if (r < 0.3 && mounted) {
        // The disk fills up under the spool: appends fail, requests get 503, nothing answered is lost.
        fault('enospc');
        await sleep(traffic / 3);
        try {
          writeFileSync(filler, Buffer.alloc(tmpfsBytes));
        } catch {
          // the filler itself stops where the disk is full: that is the point
        }
        await sleep(traffic / 3);
        if (rnd() < 0.5) {
          fault('kill9_disk_full');
          p.endedBy = 'kill';
          p.child.kill('SIGKILL');
          await p.exit;
          rmSync(filler, { force: true });
          current = spawnService();
        } else {
          rmSync(filler, { force: true });
          await sleep(traffic / 3);
        }
      } else {
        // kill -9 at a random moment; a fifth of them within the first 400 ms of the process:
        // during startup, the wait for a dead process's lock, or recovery.
        const early = rnd() < 0.2;
        const at = early ? rnd() * 400 : traffic;
        fault(early ? 'kill9_startup' : 'kill9');
        await sleep(Math.max(0, spawnedAt + at - Date.now()));
        p.endedBy = 'kill';
        p.child.kill('SIGKILL');
        await p.exit;
        current = spawnService();
      }
      report.cycles = cycle;
      log(`[cycle ${cycle}] ${JSON.stringify(faults)}`);
      if (cycle % o.checkEvery === 0 || cycle === o.cycles) await check(cycle);
    }
  } finally {
    stopping = true;
    await Promise.all(laneRuns);
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) {
      p.endedBy = 'kill';
      p.child.kill('SIGKILL');
    }
    await Promise.all(procs.map((p) => p.exit));
    const rows = adx.table('HubbleFlows');
    const denied = rows.filter((r) => r.Verdict === 'DROPPED').map((r) => r.Uuid as string);
    const byWindow = new Map<string, Record<string, unknown>>();
    for (const r of adx.table('HubbleCoverage')) byWindow.set(`${r.RunId}/${r.WindowSequence}`, r);
    const coverage = [...byWindow.values()];
    report.bodiesAcknowledged = acknowledged.bodies;
    report.resendAnswers = acknowledged.resends;
    report.deniedAcknowledged = acknowledged.denied.size;
    report.allowedAcknowledged = acknowledged.allowed.size;
    report.flowsAcknowledged = acknowledged.denied.size + acknowledged.allowed.size;
    report.deniedRows = denied.length;
    report.duplicateRows = denied.length - new Set(denied).size;
    report.allowedMissing = acknowledged.allowed.size - allowedAccounted(rows, coverage);
    report.coverageSeen = coverage.reduce((s, r) => s + Number(r.FlowsSeen ?? 0), 0);
    report.seconds = Math.round((Date.now() - started) / 100) / 10;
    await adx.stop();
    if (mounted) spawnSync('umount', ['-l', spoolRoot]);
    if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  }
  return report;
}
