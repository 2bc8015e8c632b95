import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import { Enricher } from '../../src/enrich/index.js';
import { normalizeFlow } from '../../src/normalize/index.js';
import { FLUENT_BIT_DIR, fluentBitCaptures } from '../support/fixtures.js';
import { startService, type Running } from '../helpers/service.js';

/**
 * The flows in input-cilium-agent-cri.log, joined and parsed by hand (CRI: `<time> <stream> <P|F> <line>`),
 * normalized directly: what every Fluent Bit capture of that file must produce over HTTP.
 */
function expectedFromCriLog() {
  const c = configSchema.parse({});
  const enricher = new Enricher({ ...c, aggregation: { ...c.aggregation, key: [] } });
  const lines = readFileSync(join(FLUENT_BIT_DIR, 'input-cilium-agent-cri.log'), 'utf8').split('\n').filter(Boolean);
  const flows: Record<string, unknown>[] = [];
  const kinds: string[] = [];
  let partial = '';
  for (const l of lines) {
    const [time, , tag] = l.split(' ', 3);
    const text = l.slice(time!.length + 10);
    if (tag === 'P') {
      partial += text;
      continue;
    }
    const whole = partial + text;
    partial = '';
    if (!whole.startsWith('{')) continue;
    const rec = JSON.parse(whole) as Record<string, unknown>;
    const kind = Object.keys(rec)[0]!;
    kinds.push(kind);
    if (kind === 'flow') {
      const row = normalizeFlow(rec.flow as Record<string, unknown>, { nodeName: (rec.node_name as string) ?? null, time: (rec.time as string) ?? null, lineTime: time!, lineTimeSec: null }, 'default');
      expect(enricher.process(row)).toBe('kept');
      flows.push(row);
    }
  }
  return { flows, kinds };
}

describe('real Fluent Bit 4.2.8 request bodies', () => {
  let svc: Running;
  const expected = expectedFromCriLog();
  beforeAll(async () => {
    svc = await startService();
  });
  afterAll(() => svc.stop());

  it('the capture set covers every format and compression', () => {
    const names = fluentBitCaptures().map((c) => c.name);
    expect(names.sort()).toEqual([
      'json-cri-multiline',
      'json_lines-zstd-cri-multiline',
      'json_stream-snappy-cri-multiline',
      'msgpack-cri-regex',
      'msgpack-gzip-cri-multiline',
    ]);
    expect(expected.flows).toHaveLength(10);
    expect(expected.kinds.filter((k) => k !== 'flow').sort()).toEqual(['agent_event', 'debug_event', 'lost_events']);
  });

  for (const capture of fluentBitCaptures()) {
    it(`${capture.name}: every flow and event comes out, identical to the log file's`, async () => {
      const before = await svc.rows('HubbleFlows');
      const eventsBefore = await svc.rows('HubbleEvents');
      const { host: _h, 'content-length': _l, connection: _c, ...headers } = capture.headers;
      const res = await svc.post(capture.body, headers, '/fluentbit');
      expect(res.status).toBe(200);
      const summary = (await res.json()) as { flows: number; events: number; deadLettered: number; skipped: number; records: number };
      expect(summary).toMatchObject({ flows: 10, events: 3, deadLettered: 0 });
      // The regex parser delivers the 40 KB line as three pieces; the multiline parser as one record.
      expect(summary.records).toBe(capture.name === 'msgpack-cri-regex' ? 17 : 15);
      expect(summary.skipped).toBe(capture.name === 'msgpack-cri-regex' ? 4 : 2);

      const flows = (await svc.rows('HubbleFlows')).slice(before.length);
      // Each row says who received it and which coverage window counted it; the rest is the log file's flow.
      for (const f of flows) expect(f).toMatchObject({ ReceiverNode: expect.any(String), RunId: expect.any(String), CoverageWindow: expect.any(Number) });
      expect(flows.map(({ ReceiverNode: _n, RunId: _r, CoverageWindow: _w, ...rest }) => ({ ...rest, ReceiverNode: null, RunId: null, CoverageWindow: null }))).toEqual(expected.flows);
      const events = (await svc.rows('HubbleEvents')).slice(eventsBefore.length);
      expect(events.map((e) => e.EventKind)).toEqual(['agent_event', 'debug_event', 'lost_events']);
      expect(events.every((e) => e.NodeName === 'my-node')).toBe(true);
    });
  }

  it('the joined 40 KB flow keeps every byte of its three pieces', async () => {
    const rows = await svc.rows('HubbleFlows');
    const big = rows.filter((r) => (r.AdditionalFlowData as { _pad?: string } | null)?._pad);
    expect(big.length).toBe(5);
    for (const r of big) expect((r.AdditionalFlowData as { _pad: string })._pad).toBe('x'.repeat(40_000));
  });

  it('counts requests by format and records received', async () => {
    expect(await svc.metric('hubble_adx_http_requests_total', { format: 'msgpack', status: '200' })).toBe(2);
    expect(await svc.metric('hubble_adx_http_requests_total', { format: 'json', status: '200' })).toBe(2);
    expect(await svc.metric('hubble_adx_http_requests_total', { format: 'json_lines', status: '200' })).toBe(1);
    expect(await svc.metric('hubble_adx_records_received_total')).toBe(17 + 15 * 4);
    expect(await svc.metric('hubble_adx_flows_total')).toBe(50);
    expect(await svc.metric('hubble_adx_lines_skipped_total', { reason: 'partial_piece' })).toBe(2);
    expect(await svc.metric('hubble_adx_lines_skipped_total', { reason: 'agent_log' })).toBe(10);
  });
});
