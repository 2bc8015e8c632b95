/**
 * The service under the hostile-records generator, and what must hold after each body: no 5xx but
 * 503, the process still running, Object.prototype unchanged, every HubbleCoverage row balanced
 * (FlowsSeen = FlowsKept + FlowsFiltered + FlowsSampledOut + FlowsDeadLettered, no count negative),
 * and a valid flow sent after it delivered. Live (in this process or as the image runs it) and
 * parked (a sink that blocks, so that the body is spooled and made into rows later).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Batch } from '../../src/batch/index.js';
import { DEFAULT_TABLE_NAMES, type TableKey } from '../../src/schema/index.js';
import { LocalFileSink, type Sink } from '../../src/sink/index.js';
import { readRows, startService, type Running } from '../helpers/service.js';
import { spawnService, type Child } from './child-service.js';
import { containerNodeOptions } from './container-node-options.js';
import { CONTENT_TYPE, jsonLinesBody } from './fluent-bit-bodies.js';
import type { HostileBody } from './hostile-records.js';
import { flowLine } from './hostile-bodies.js';

export interface Target {
  readonly name: string;
  readonly url: string;
  /** The local sink's directory. */
  readonly dataDir: string;
  alive(): boolean;
  /** Before a body: for a parked target, block the sink and fill what it holds so the body parks. */
  beforeBody(): Promise<void>;
  /** After it: let the sink go. */
  afterBody(): Promise<void>;
  /** Object.prototype (and Array.prototype) as they were: directly in this process, through prom-client in a child. */
  prototypeIntact(): Promise<boolean>;
  peakRssMiB(): number;
  /** Start it again after it exited (a long run goes on, counting the crash). */
  restart?(): Promise<void>;
  stop(): Promise<void>;
}

/** Every own property of the prototypes input could reach, and its value. */
function prototypeSnapshot(): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const [name, proto] of [['Object', Object.prototype], ['Array', Array.prototype]] as const) {
    for (const k of Reflect.ownKeys(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, k)!;
      m.set(`${name}.${String(k)}`, d.value ?? d.get);
    }
  }
  return m;
}

const SNAPSHOT = prototypeSnapshot();

function inProcessPrototypeIntact(): boolean {
  const now = prototypeSnapshot();
  if (now.size !== SNAPSHOT.size) return false;
  for (const [k, v] of SNAPSHOT) if (now.get(k) !== v) return false;
  return ({} as Record<string, unknown>).polluted === undefined;
}

/** The local sink behind a gate: closed, its writes wait (ADX slow or down). */
class GatedSink implements Sink {
  readonly name = 'gated-local';
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  constructor(private readonly inner: LocalFileSink) {}
  readonly routes = ['gated'];
  get maxBatchBytes(): number {
    return this.inner.maxBatchBytes;
  }
  classify(err: unknown) {
    return this.inner.classify(err);
  }
  setAside(): Promise<void> {
    return this.inner.setAside();
  }
  writer<K extends TableKey>(table: K) {
    return this.inner.writer(table);
  }
  block(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open();
  }
  async send(batch: Batch): Promise<void> {
    await this.gate;
    await this.inner.send(batch);
  }
  async close(): Promise<void> {
    this.release();
    await this.inner.close();
  }
}

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `hubble-adx-${prefix}-`));
}

/** The service in this process; `parked`: every body is spooled while the sink is blocked, then made into rows. */
export async function inProcessTarget(parked: boolean): Promise<Target> {
  const dataDir = tempDir('pbt-data');
  const local = new LocalFileSink({ directory: dataDir, maxFileBytes: 64 << 20, maxFiles: 0, tableNames: DEFAULT_TABLE_NAMES });
  const sink = new GatedSink(local);
  const svc: Running = await startService(
    { batch: { maxAgeMs: 50, ...(parked ? { maxPendingRows: 1 } : {}) }, coverage: { windowSeconds: 1 }, limits: { requestTimeoutMs: 10_000 } },
    sink,
  );
  let filler = 0;
  return {
    name: parked ? 'in-process, parked' : 'in-process, live',
    url: svc.url,
    dataDir,
    alive: () => true,
    async beforeBody() {
      if (!parked) return;
      sink.block();
      // One row pending at batch.maxPendingRows (1): what comes next is parked in the spool.
      const res = await fetch(svc.url, { method: 'POST', body: jsonLinesBody([{ log: flowLine(`filler-${filler++}`) }]), headers: { 'content-type': CONTENT_TYPE.json_lines } });
      await res.text();
    },
    async afterBody() {
      sink.release();
    },
    prototypeIntact: async () => inProcessPrototypeIntact(),
    peakRssMiB: () => Number.NaN,
    async stop() {
      sink.release();
      await svc.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The built service as the image runs it (its NODE_OPTIONS), live. */
export async function childTarget(): Promise<Target> {
  const dir = tempDir('pbt-child');
  const dataDir = join(dir, 'data');
  const env = {
    NODE_OPTIONS: containerNodeOptions(),
    HUBBLE_ADX_SINK__LOCAL__DIRECTORY: dataDir,
    HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
    HUBBLE_ADX_BATCH__MAX_AGE_MS: '50',
    HUBBLE_ADX_COVERAGE__WINDOW_SECONDS: '1',
  };
  let child: Child = await spawnService(env);
  const url = () => `http://127.0.0.1:${child.port}`;
  return {
    name: 'child process, image NODE_OPTIONS, live',
    get url() {
      return url();
    },
    dataDir,
    alive: () => child.proc.exitCode === null && child.proc.signalCode === null,
    beforeBody: async () => undefined,
    afterBody: async () => undefined,
    async prototypeIntact() {
      // A property on Object.prototype makes prom-client refuse every labelled metric.
      const res = await fetch(`${url()}/metrics`);
      return res.status === 200 && (await res.text()).includes('hubble_adx_http_requests_total{');
    },
    peakRssMiB: () => child.peakRssMiB(),
    async stop() {
      if (child.proc.exitCode === null) {
        child.proc.kill('SIGKILL');
        await child.exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      child = await spawnService(env);
    },
  };
}

export interface BodyResult {
  status: number;
  deferred: boolean;
}

/** A property of the service that did not hold after a body. */
export class Violation extends Error {}

let valid = 0;

/** Post one body and check everything that must hold after it; throws Violation naming what did not. */
export async function checkBody(t: Target, b: HostileBody, deliverWithinMs = 10_000): Promise<BodyResult> {
  await t.beforeBody();
  let status: number;
  let deferred = false;
  try {
    const res = await fetch(t.url, { method: 'POST', body: b.body, headers: b.headers, signal: AbortSignal.timeout(20_000) });
    const text = await res.text();
    status = res.status;
    if (status === 200) deferred = (JSON.parse(text) as { deferred?: boolean }).deferred === true;
    if (status >= 500 && status !== 503) throw new Violation(`${status} for ${b.describe}: ${text.slice(0, 300)}`);
  } finally {
    await t.afterBody();
  }
  if (!t.alive()) throw new Violation(`the process exited after ${b.describe}`);
  if (!(await t.prototypeIntact())) throw new Violation(`Object.prototype changed after ${b.describe}`);
  const uuid = `valid-after-${process.pid}-${valid++}`;
  const deadline = Date.now() + deliverWithinMs;
  for (;;) {
    const res = await fetch(t.url, { method: 'POST', body: jsonLinesBody([{ log: flowLine(uuid) }]), headers: { 'content-type': CONTENT_TYPE.json_lines } });
    await res.text();
    if (res.status === 200) break;
    if (res.status !== 503 || Date.now() > deadline) throw new Violation(`a valid flow after ${b.describe} got ${res.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  while (!readRows(t.dataDir, 'HubbleFlows').some((r) => r.Uuid === uuid)) {
    if (!t.alive()) throw new Violation(`the process exited after ${b.describe}`);
    if (Date.now() > deadline) throw new Violation(`a valid flow after ${b.describe} did not arrive within ${deliverWithinMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const unbalanced = coverageProblems(t.dataDir);
  if (unbalanced.length > 0) throw new Violation(`HubbleCoverage after ${b.describe}: ${unbalanced[0]}`);
  return { status, deferred };
}

const COUNTS = ['RecordsReceived', 'FlowsSeen', 'FlowsKept', 'FlowsFiltered', 'FlowsSampledOut', 'FlowsDeadLettered', 'FlowsAggregated', 'RowsWritten', 'HubbleLostEvents', 'BackpressureResponses'];

/** Every HubbleCoverage row written so far that is not balanced, or has a count below zero. */
export function coverageProblems(dataDir: string): string[] {
  const out: string[] = [];
  for (const r of readRows(dataDir, 'HubbleCoverage')) {
    const n = (k: string) => r[k] as number;
    for (const k of COUNTS) if (!(Number.isSafeInteger(n(k)) && n(k) >= 0)) out.push(`${k} is ${String(r[k])} in the window from ${String(r.WindowStart)}`);
    if (n('FlowsSeen') !== n('FlowsKept') + n('FlowsFiltered') + n('FlowsSampledOut') + n('FlowsDeadLettered')) {
      out.push(`FlowsSeen ${n('FlowsSeen')} != kept ${n('FlowsKept')} + filtered ${n('FlowsFiltered')} + sampled out ${n('FlowsSampledOut')} + dead-lettered ${n('FlowsDeadLettered')} in the window from ${String(r.WindowStart)}`);
    }
  }
  return out;
}

export function coverageRows(dataDir: string): number {
  return readRows(dataDir, 'HubbleCoverage').length;
}
