import { describe, expect, it } from 'vitest';
import { Extractor, type DeadLetter, type DecidedLine, type ExporterRecord, type ExtractOutput, type PieceSource, type SkipReason } from '../../src/extract/index.js';
import { Receipt } from '../../src/spool/index.js';

const FLOW = { time: '2025-04-16T18:49:59.450463857Z', verdict: 'FORWARDED', IP: { source: '10.0.1.13', destination: '10.0.1.178' } };
const LINE = JSON.stringify({ flow: FLOW, node_name: 'c1/n1', time: '2025-04-16T18:49:59.450463857Z' });

function harness(opts: Partial<ConstructorParameters<typeof Extractor>[0]> = {}) {
  const out = { records: [] as ExporterRecord[], skips: [] as SkipReason[], dead: [] as DeadLetter[], done: [] as PieceSource[], given: [] as string[] };
  const extractor = new Extractor({ logKeys: ['log', 'message'], partialMaxBytes: 64 * 1024, partialMaxAgeMs: 1000, partialMaxLines: 1024, partialMaxTotalBytes: 16 << 20, maxLineBytes: 1 << 20, ...opts });
  // Whoever decides a line releases its holds, as the pipeline does once it has kept the sources.
  const decided = (l: DecidedLine) => {
    out.done.push(...l.sources);
    for (const h of l.holds) h.release();
  };
  const sink: ExtractOutput = { record: (r) => out.records.push(r), skip: (s) => out.skips.push(s), dead: (d) => out.dead.push(d), lineDecided: decided };
  // Every outcome told to the one output of this test.
  const ex = {
    push: (rec: Record<string, unknown>, timeSec: number | null, now: number, source?: PieceSource) => extractor.push(rec, timeSec, now, sink, source),
    expire: (now: number) => {
      for (const g of extractor.expire(now, sink)) {
        out.given.push(g.key);
        decided(g.line);
      }
    },
    drain: () => {
      for (const g of extractor.expire(Number.POSITIVE_INFINITY, sink)) {
        out.given.push(g.key);
        decided(g.line);
      }
    },
    forget: (keys: string[]) => extractor.forget(keys),
    get pendingPartials() {
      return extractor.pendingPartials;
    },
    get pendingPartialBytes() {
      return extractor.pendingPartialBytes;
    },
    get evictedPartials() {
      return extractor.evictedPartials;
    },
  };
  return { ex, out };
}

describe('extracting exporter records from cilium-agent log records', () => {
  it('reads the raw exporter line under `log` (cri multiline parser) and `message` (cri regex parser)', () => {
    const { ex, out } = harness();
    ex.push({ log: LINE, stream: 'stdout', _p: 'F', time: '2026-11-20T08:00:01Z' }, null, 0);
    ex.push({ message: LINE, logtag: 'F' }, null, 0);
    expect(out.records).toHaveLength(2);
    expect(out.records[0]).toMatchObject({ kind: 'flow', payload: FLOW, nodeName: 'c1/n1', lineTime: '2026-11-20T08:00:01Z' });
  });

  it('takes a map merged by the kubernetes filter, at the top level or under Merge_Log_Key', () => {
    const top = harness();
    top.ex.push({ flow: FLOW, node_name: 'n1', time: 'x', kubernetes: { pod_name: 'cilium-abc' } }, null, 0);
    expect(top.out.records[0]).toMatchObject({ kind: 'flow', payload: FLOW, nodeName: 'n1' });
    const nested = harness({ mergeLogKey: 'log_processed' });
    nested.ex.push({ log: 'ignored', log_processed: { lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '3' }, node_name: 'n2' } }, null, 0);
    expect(nested.out.records[0]).toMatchObject({ kind: 'lost_events', nodeName: 'n2' });
  });

  it('unwraps a record the agent logged inside a logfmt line (Go %q quoting)', () => {
    const { ex, out } = harness();
    const quoted = JSON.stringify(LINE); // a Go-style quoted string for this ASCII text
    ex.push({ log: `time="2026-11-20T08:00:00Z" level=info msg=${quoted} subsys=hubble` }, null, 0);
    expect(out.records[0]).toMatchObject({ kind: 'flow', payload: FLOW });
    // JSON's own escapes survive the second quoting: \u001b in the record is \\u001b in the line.
    ex.push({ log: String.raw`level=info msg="{\"flow\":{\"verdict\":\"DROPPED\",\"Summary\":\"\\u001b[0m\"}}" subsys=x` }, null, 0);
    expect(out.records[1]!.payload).toEqual({ verdict: 'DROPPED', Summary: '\u001b[0m' });
  });

  it('unwraps a record inside a slog JSON line', () => {
    const { ex, out } = harness();
    ex.push({ log: JSON.stringify({ time: 't', level: 'INFO', msg: LINE }) }, null, 0);
    expect(out.records[0]).toMatchObject({ kind: 'flow', payload: FLOW });
  });

  it('skips ordinary agent log lines and other JSON cheaply, with a reason each', () => {
    const { ex, out } = harness();
    ex.push({ log: 'level=info msg="Policy imported via API, recalculating..." subsys=daemon' }, null, 0);
    ex.push({ log: '{"level":"info","msg":"hello"}' }, null, 0);
    ex.push({ stream: 'stdout' }, null, 0);
    ex.push({ log: '' }, null, 0);
    expect(out.skips).toEqual(['agent_log', 'other_json', 'no_log_field', 'empty_line']);
    expect(out.records).toHaveLength(0);
    expect(out.dead).toHaveLength(0);
  });

  it('sets aside a line that claims to be a flow but is not valid JSON, with the raw line', () => {
    const { ex, out } = harness();
    const broken = LINE.slice(0, 60);
    ex.push({ log: broken, kubernetes: { host: 'node-7' } }, null, 0);
    ex.push({ log: '{"flow":"not an object"}' }, null, 0);
    expect(out.dead.map((d) => d.reason)).toEqual(['invalid_json', 'invalid_flow']);
    expect(out.dead[0]).toMatchObject({ stage: 'extract', raw: broken, nodeName: 'node-7' });
    expect(out.dead[0]!.message).toMatch(/not valid JSON/);
  });

  it('joins CRI partial pieces (logtag P, P, F) of one stream, interleaved with another stream', () => {
    const { ex, out } = harness();
    const k8s = (pod: string) => ({ namespace_name: 'kube-system', pod_name: pod, container_name: 'cilium-agent' });
    const a = LINE;
    const b = JSON.stringify({ flow: { ...FLOW, uuid: 'b' } });
    ex.push({ log: a.slice(0, 30), logtag: 'P', kubernetes: k8s('cilium-a') }, null, 0);
    ex.push({ log: b.slice(0, 10), logtag: 'P', kubernetes: k8s('cilium-b') }, null, 0);
    ex.push({ log: a.slice(30, 70), logtag: 'P', kubernetes: k8s('cilium-a') }, null, 0);
    ex.push({ log: b.slice(10), logtag: 'F', kubernetes: k8s('cilium-b') }, null, 0);
    ex.push({ log: a.slice(70), logtag: 'F', kubernetes: k8s('cilium-a') }, null, 0);
    expect(out.records.map((r) => r.payload.uuid ?? 'a')).toEqual(['b', 'a']);
    expect(out.records[1]!.payload).toEqual(FLOW);
    expect(out.skips).toEqual(['partial_piece', 'partial_piece', 'partial_piece']);
    expect(ex.pendingPartials).toBe(0);
  });

  it('holds each source of pieces (a request) once per unfinished line, and hands the holds to whoever decides the line', () => {
    const { ex, out } = harness({ partialMaxAgeMs: 1000 });
    const k8s = (pod: string) => ({ namespace_name: 'kube-system', pod_name: pod, container_name: 'cilium-agent' });
    const reqA = new Receipt(1);
    const reqB = new Receipt(2);
    ex.push({ log: LINE.slice(0, 30), logtag: 'P', kubernetes: k8s('a') }, null, 0, reqA);
    ex.push({ log: LINE.slice(30, 40), logtag: 'P', kubernetes: k8s('a') }, null, 0, reqA);
    ex.push({ log: LINE.slice(0, 20), logtag: 'P', kubernetes: k8s('b') }, null, 0, reqA);
    reqA.made();
    reqB.made();
    expect(reqA.settled).toBe(false); // two lines hold it, however many pieces
    ex.push({ log: LINE.slice(40), logtag: 'F', kubernetes: k8s('a') }, null, 0, reqB);
    expect(out.records).toHaveLength(1);
    expect(out.done).toEqual([reqA]);
    expect(reqA.settled).toBe(false); // the other line still holds it
    ex.expire(5_000); // the other line never finishes: a dead letter, named by its key, and its source is let go too
    expect(out.dead.map((d) => d.reason)).toEqual(['partial_incomplete']);
    expect(out.given).toHaveLength(1);
    expect(out.done).toEqual([reqA, reqA]);
    expect([reqA.settled, reqB.settled]).toEqual([true, true]);
  });

  it('forgets a line by its key (a replay reaching the checkpoint that gave it up), letting go of its holds', () => {
    const { ex, out } = harness();
    const k8s = { namespace_name: 'kube-system', pod_name: 'a', container_name: 'cilium-agent' };
    const src = new Receipt(1);
    ex.push({ log: LINE.slice(0, 30), logtag: 'P', kubernetes: k8s }, null, 0, src);
    src.made();
    ex.expire(5_000);
    const key = out.given[0]!;
    const again = new Receipt(2);
    ex.push({ log: LINE.slice(0, 30), logtag: 'P', kubernetes: k8s }, null, 0, again);
    again.made();
    ex.forget([key]);
    expect(ex.pendingPartials).toBe(0);
    expect(again.settled).toBe(true);
    ex.push({ log: LINE, logtag: 'F', kubernetes: k8s }, null, 0);
    expect(out.records).toHaveLength(1);
  });

  it('does not re-join a line the cri multiline parser already joined (it leaves `_p: P` on it)', () => {
    const { ex, out } = harness();
    ex.push({ log: LINE, _p: 'P' }, null, 0);
    expect(out.records).toHaveLength(1);
  });

  it('dead-letters a partial line that grows past the bound and discards its later pieces', () => {
    const { ex, out } = harness({ partialMaxBytes: 16 * 1024 });
    const piece = 'x'.repeat(10 * 1024);
    ex.push({ log: '{"flow":{"_pad":"' + piece, logtag: 'P' }, null, 0);
    ex.push({ log: piece, logtag: 'P' }, null, 0);
    ex.push({ log: piece, logtag: 'P' }, null, 0);
    ex.push({ log: '"}}', logtag: 'F' }, null, 0);
    expect(out.dead).toHaveLength(1);
    expect(out.dead[0]).toMatchObject({ reason: 'partial_too_large' });
    expect(out.dead[0]!.raw.length).toBeGreaterThan(16 * 1024);
    expect(out.records).toHaveLength(0);
    // The next line of the stream starts clean.
    ex.push({ log: LINE, logtag: 'F' }, null, 0);
    expect(out.records).toHaveLength(1);
  });

  it('dead-letters a partial line whose final piece never comes', () => {
    const { ex, out } = harness({ partialMaxAgeMs: 1000 });
    ex.push({ log: '{"flow":{', logtag: 'P' }, null, 1_000);
    ex.expire(1_500);
    expect(out.dead).toHaveLength(0);
    ex.expire(2_000);
    expect(out.dead[0]).toMatchObject({ reason: 'partial_incomplete', raw: '{"flow":{' });
    expect(ex.pendingPartials).toBe(0);
  });

  it('reports pending partial lines on drain instead of dropping them', () => {
    const { ex, out } = harness();
    ex.push({ log: '{"flow":{', logtag: 'P' }, null, 0);
    ex.drain();
    expect(out.dead.map((d) => d.reason)).toEqual(['partial_incomplete']);
  });
});
