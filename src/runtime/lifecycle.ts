import { randomUUID } from 'node:crypto';
import type { Batcher } from '../batch/index.js';
import { outcomeSettingsOf, type Config } from '../config/index.js';
import { CoverageLedger, UpstreamGaps, configHash, type RunInfo } from '../coverage/index.js';
import type { Logger } from '../logger.js';
import type { Counts, Processor } from '../process/index.js';
import { Receipt, Spool, diskFull, markBefore, type Hold, type Mark, type Recovered } from '../spool/index.js';
import { VERSION } from '../version.js';
import { Checkpoints, type PipelineState } from './checkpoints.js';
import { RecordQueue, type QueueDeps } from './record-queue.js';

/** What exists once the pipeline has started: the spool taken, the run begun, the queue fed. */
export interface Core {
  spool: Spool | null;
  run: RunInfo;
  ledger: CoverageLedger;
  upstream: UpstreamGaps;
  checkpoints: Checkpoints;
  queue: RecordQueue;
  /** Records an earlier run left in the spool, queued to be made into rows first. */
  recovered: number;
}

export interface StartDeps {
  config: Config;
  processor: Processor;
  batcher: Batcher;
  log: Logger;
  runKind: RunInfo['kind'];
  nodeName: string;
  fsyncSeconds(s: number): void;
  tornRecord(reason: string): void;
  publish(c: Counts): void;
  coverageWindowClosed(): void;
  replayedRows(rows: number): void;
  hasRoom(): boolean;
  roomFreed(): Promise<void>;
  decodeTurn(bytes: number): Promise<() => void>;
  oldestPendingSeconds(now: number): number;
}

/** Rows made from one slice of a request, at most: what bounds the memory one request takes at a time. */
const SLICE_RECORDS = 2000;

/**
 * Start: take the spool (locked, recovered: nothing is written to it before), begin a run (its
 * start is the first record this run appends, so that a later replay knows which records were
 * this run's), and queue what the earlier run left before anything new.
 */
const SPOOL_CUT: Record<Recovered['cut'][number]['reason'], string> = {
  torn: 'spool segment cut at a torn record (the process died while writing it; it was never answered)',
  corrupt: 'spool segment cut at a corrupt record (its checksum does not match); what follows it is not read',
  stray: 'spool segment cut back or deleted: written by a process after it lost the spool (it answered none of it)',
  fence_unreadable: 'spool.fence cannot be read: every segment is read whole, and what a frozen process wrote after losing the spool may be made into rows',
};

export async function start(d: StartDeps): Promise<Core> {
  const config = d.config;
  if (config.spool.enabled) d.log.info({ directory: config.spool.directory }, 'taking the spool directory (a lock left by a process that died is taken over once it is spool.lockStaleMs old)');
  let resendLogReported = 0;
  const resendLogFailed = (err: unknown) => {
    // Once a minute: it fails for every delivered request until someone fixes the file.
    if (Date.now() - resendLogReported < 60_000) return;
    resendLogReported = Date.now();
    d.log.error({ err, file: `${config.spool.directory}/resends.log` }, 'the spool\'s resend log cannot be written: bodies Fluent Bit sends again after a restart may be made into rows twice until it can');
  };
  const spool = config.spool.enabled ? await Spool.open({ ...config.spool }, { fsyncSeconds: d.fsyncSeconds, resendLogFailed }, Date.now()) : null;
  if (spool) d.log.info({ epoch: spool.epochTaken, records: spool.recovered.records.length, cleanStop: spool.recovered.cleanStop !== null }, 'spool taken: what the previous run left is read');
  // The run begins once the spool is this process's (after the wait for a dead process's lock).
  const now = Date.now();
  const recovered = spool?.recovered ?? null;
  for (const c of recovered?.cut ?? []) {
    d.tornRecord(c.reason);
    d.log.warn({ file: c.file, offset: c.offset, reason: c.reason, detail: c.detail }, SPOOL_CUT[c.reason]);
  }
  const stop = recovered?.cleanStop as { runId?: unknown; stoppedAt?: unknown } | null;
  const run: RunInfo = {
    runId: randomUUID(),
    kind: d.runKind,
    startedAt: now,
    cluster: config.cluster,
    nodeName: d.nodeName,
    version: VERSION,
    configHash: configHash(config),
    previousRunEnd: !recovered ? 'none' : stop ? 'clean' : recovered.usedBefore ? 'crash' : 'none',
    previousLastAlive: stop && typeof stop.stoppedAt === 'number' ? stop.stoppedAt : (recovered?.lastAlive ?? null),
    outcomes: outcomeSettingsOf(config),
  };
  const state = (recovered?.checkpoint?.state ?? null) as PipelineState | null;
  const ledger = new CoverageLedger(config.coverage.windowSeconds, run, state?.ledger ?? null);
  let upstream = new UpstreamGaps(config.coverage.upstream);
  if (state?.upstream) {
    const restored = UpstreamGaps.restore(config.coverage.upstream, state.upstream, now);
    if (restored.ok) upstream = restored.tracker;
    else d.log.warn({ reason: restored.reason }, 'the export files\' offsets could not be restored: followed afresh');
  }
  const records = recovered?.records ?? [];
  // The latest checkpoint stays until this run writes one: it says where counting stands.
  let latest: Hold | null = null;
  for (const r of records) if (r.kind === 'checkpoint' && r.receipt.position === recovered!.checkpointPosition) latest = r.receipt.hold();
  let queue: RecordQueue | null = null;
  const counted = recovered?.checkpoint?.mark ?? { position: 0, item: 0 };
  const aggregated = state?.aggregated ?? counted;
  const checkpoints = new Checkpoints(
    {
      processor: d.processor,
      ledger,
      upstream,
      spool,
      batcher: d.batcher,
      run,
      log: d.log,
      publish: d.publish,
      coverageWindowClosed: d.coverageWindowClosed,
      mark: () => laterOf(queue!.mark, counted),
      foldMark: () => laterOf(queue!.mark, aggregated),
      expiryAllowed: () => queue!.idle,
      spoolPressed: () => spool !== null && spool.bytes >= config.spool.maxBytes * config.batch.resumeBelow,
      oldestPendingSeconds: d.oldestPendingSeconds,
    },
    {
      aggregationWindowMs: config.aggregation.enabled || config.overload.mode === 'aggregate-allowed' ? config.aggregation.windowSeconds * 1000 : null,
      partialMaxAgeMs: config.extract.partialMaxAgeMs,
      intervalMs: config.spool.checkpointIntervalMs,
    },
    latest,
    aggregated,
    now,
  );
  const queueDeps: QueueDeps = {
    spool,
    processor: d.processor,
    batcher: d.batcher,
    ledger,
    upstream,
    checkpoints,
    config,
    receiverNode: d.nodeName,
    sliceRecords: SLICE_RECORDS,
    hasRoom: d.hasRoom,
    roomFreed: d.roomFreed,
    decodeTurn: d.decodeTurn,
    publish: d.publish,
    replayedRows: d.replayedRows,
    log: d.log,
  };
  const given = records.flatMap((r) => (r.kind === 'checkpoint' ? ((r.head.state as PipelineState | null)?.given ?? []).map((g) => ({ mark: g.mark ?? r.head.mark, keys: [g.key] })) : []));
  queue = new RecordQueue(queueDeps, { counted, aggregated, given });
  // A checkpoint that gave lines up stays as long as any record that brought their pieces does.
  const byPosition = new Map<number, Receipt>(records.map((r) => [r.receipt.position, r.receipt]));
  for (const r of records) {
    if (r.kind !== 'checkpoint') continue;
    for (const g of (r.head.state as PipelineState | null)?.given ?? []) {
      for (const p of g.sources) {
        const source = byPosition.get(p);
        if (source) r.receipt.keepUntil(source);
      }
    }
  }
  for (const r of records) {
    switch (r.kind) {
      case 'request':
        queue.push({ kind: 'request', receipt: r.receipt, receivedAt: r.receivedAt, aggregateAllowed: r.aggregateAllowed, countedBefore: r.countedBefore, live: null, done: null, replayed: true });
        break;
      case 'run':
        queue.push({ kind: 'run', receipt: r.receipt, run: r.run as RunInfo });
        break;
      case 'checkpoint':
        queue.push({ kind: 'checkpoint', receipt: r.receipt });
        break;
      case 'rows':
        queue.push({ kind: 'rows', receipt: r.receipt, table: r.table, rows: r.rows });
        break;
    }
  }
  const runReceipt = spool ? await appendRunWhenRoom(spool, run, d.log) : new Receipt(-1);
  queue.push({ kind: 'run', receipt: runReceipt, run });
  queue.kick();
  return { spool, run, ledger, upstream, checkpoints, queue, recovered: records.length };
}

/** The run record, once the disk has room for it (a start on a full disk waits, answering 503, as a running process does). */
async function appendRunWhenRoom(spool: Spool, run: RunInfo, log: Logger): Promise<Receipt> {
  for (let warned = false; ; warned = true) {
    try {
      return await spool.appendRun(run);
    } catch (err) {
      if (!diskFull(err)) throw err;
      if (!warned) log.warn({ err }, 'the spool\'s disk is full: the run starts once it has room (requests get 503 meanwhile)');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** The later of two marks (a checkpoint never records less than the one the run resumed from). */
function laterOf(a: Mark, b: Mark): Mark {
  return markBefore(a, b) ? b : a;
}
