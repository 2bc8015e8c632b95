import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { metricValue, startService, type Running } from '../helpers/service.js';

describe('/metrics, /healthz, /readyz', () => {
  let svc: Running;
  let text = '';
  beforeAll(async () => {
    svc = await startService();
    const now = new Date(Date.now() - 3_000).toISOString();
    const lines = [
      JSON.stringify({ flow: { time: now, uuid: 'm1' }, node_name: 'aks-1/node-a' }),
      JSON.stringify({ lost_events: { source: 'HUBBLE_RING_BUFFER', num_events_lost: '5', cpu: 1 }, node_name: 'aks-1/node-a', time: now }),
      JSON.stringify({ lost_events: { source: 2, num_events_lost: '2' }, node_name: 'node-b', time: now }),
      'level=info msg="just a log line"',
    ];
    await svc.post(jsonLinesBody(lines.map((log) => ({ log }))), { 'content-type': 'application/x-ndjson' });
    await svc.service.pipeline.flush();
    const res = await fetch(`${svc.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    text = await res.text();
  });
  afterAll(() => svc.stop());

  it('every metric carries the hubble_adx_ prefix and a HELP and TYPE line', () => {
    const names = [...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !n.startsWith('hubble_adx_'))).toEqual([]);
    for (const n of ['hubble_adx_http_requests_total', 'hubble_adx_event_lag_seconds', 'hubble_adx_hubble_lost_events_total', 'hubble_adx_pipeline_pending_rows', 'hubble_adx_dead_letters_total']) {
      expect(text).toContain(`# HELP ${n} `);
    }
    expect(text).toContain('# TYPE hubble_adx_event_lag_seconds histogram');
  });

  it('Hubble lost events are counted by source and node', () => {
    expect(metricValue(text, 'hubble_adx_hubble_lost_events_total', { source: 'HUBBLE_RING_BUFFER', node: 'node-a' })).toBe(5);
    expect(metricValue(text, 'hubble_adx_hubble_lost_events_total', { source: 'OBSERVER_EVENTS_QUEUE', node: 'node-b' })).toBe(2);
  });

  it('the event-time lag of written rows is observed per table', () => {
    expect(metricValue(text, 'hubble_adx_event_lag_seconds_count', { table: 'flows' })).toBe(1);
    // The flow is 3 s old: it lands in the 5 s bucket but not the 2 s one.
    expect(metricValue(text, 'hubble_adx_event_lag_seconds_bucket', { table: 'flows', le: '2' })).toBe(0);
    expect(metricValue(text, 'hubble_adx_event_lag_seconds_bucket', { table: 'flows', le: '5' })).toBe(1);
    expect(metricValue(text, 'hubble_adx_rows_written_total', { table: 'events' })).toBe(2);
    expect(metricValue(text, 'hubble_adx_batch_rows_count', { table: 'flows' })).toBe(1);
  });

  it('skipped lines are counted by reason', () => {
    expect(metricValue(text, 'hubble_adx_lines_skipped_total', { reason: 'agent_log' })).toBe(1);
  });

  it('health endpoints answer', async () => {
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${svc.url}/readyz`)).json()).toEqual({ status: 'ready' });
  });
});
