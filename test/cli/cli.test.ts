import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FLUENT_BIT_DIR, hubbleFixtureLines } from '../support/fixtures.js';
import { SCHEMA_VERSION } from '../../src/schema/index.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { readRows } from '../helpers/service.js';

// The CLI as users run it: the compiled entry point (`npm test` builds first).
const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/src/cli.js');

function run(args: string[], env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, input, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = () => mkdtempSync(join(tmpdir(), 'hubble-adx-cli-'));

describe('hubble-adx command line', () => {
  it('replay FILE: a saved CRI container log goes through the pipeline into the local sink', () => {
    const dir = tmp();
    const r = run(['replay', join(FLUENT_BIT_DIR, 'input-cilium-agent-cri.log')], { HUBBLE_ADX_SINK__LOCAL__DIRECTORY: dir, HUBBLE_ADX_LOG__LEVEL: 'warn' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ lines: 17, flows: 10, events: 3, deadLettered: 0 });
    expect(readRows(dir, 'HubbleFlows')).toHaveLength(10);
    expect(readRows(dir, 'HubbleEvents').map((e) => e.EventKind)).toEqual(['agent_event', 'debug_event', 'lost_events']);
  });

  it('replay -: `kubectl logs` output on standard input', () => {
    const dir = tmp();
    const lines = hubbleFixtureLines().filter((l) => l.file.includes('330-dns'));
    const input = ['level=info msg="Starting" subsys=hubble', ...lines.map((l) => l.text)].join('\n') + '\n';
    const r = run(['replay', '-'], { HUBBLE_ADX_SINK__LOCAL__DIRECTORY: dir, HUBBLE_ADX_LOG__LEVEL: 'warn' }, input);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ lines: 331, flows: 330, skipped: 1 });
    const rows = readRows(dir, 'HubbleFlows');
    expect(rows).toHaveLength(330);
    expect(rows.every((x) => x.L7Type !== null && x.DnsQuery !== null)).toBe(true);
  });

  it('a bad configuration stops it with exit code 2 and names the key', () => {
    const r = run(['serve'], { HUBBLE_ADX_SERVER__PORT: 'eighty' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/server\.port/);
  });

  it('schema prints the table commands generated from the schema definition', () => {
    const r = run(['schema']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\.create-merge table HubbleFlows \(TimeGenerated:datetime, Uuid:string, /);
    expect(r.stdout).toContain('.create-merge table HubbleEvents (');
    expect(r.stdout).toContain('.create-merge table HubbleDeadLetters (');
  });

  it('kql prints the database setup for the configured table names', () => {
    const r = run(['kql'], { HUBBLE_ADX_SINK__TABLES__FLOWS: 'NetFlows' });
    expect(r.code).toBe(0);
    for (const f of ['01-tables.kql', '02-mappings.kql', '03-policies.kql', '04-dedup-view.kql', '05-functions.kql']) expect(r.stdout).toContain(`// ===== ${f}`);
    expect(r.stdout).toContain('.create-merge table NetFlows (');
    expect(r.stdout).toContain(`ingestion json mapping "NetFlows_json_v${SCHEMA_VERSION}"`);
    expect(r.stdout).toMatch(/HubbleDeniedFlows\(lookback: timespan = 1h\)\n\{\n    NetFlows\n/);
  });

  it('sink kusto without a cluster or database is a configuration error naming both keys', () => {
    const r = run(['serve'], { HUBBLE_ADX_SINK__TYPE: 'kusto' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('sink.kusto.clusterUrl');
    expect(r.stderr).toContain('sink.kusto.database');
  });

  it('serve: takes a request, then on SIGTERM refuses new ones, writes what it accepted and exits 0', async () => {
    const dir = tmp();
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [CLI, 'serve'], {
      env: { PATH: process.env.PATH, HUBBLE_ADX_SINK__LOCAL__DIRECTORY: dir, HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'), HUBBLE_ADX_SERVER__PORT: String(port), HUBBLE_ADX_BATCH__MAX_AGE_MS: '60000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const deadline = Date.now() + 10_000;
    while (!out.includes('hubble-adx ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain('hubble-adx ready');
    const line = JSON.stringify({ flow: { time: '2026-01-01T00:00:00Z', uuid: 'sigterm-1' } });
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: jsonLinesBody([{ log: line }]), headers: { 'content-type': 'application/x-ndjson' } });
    expect(res.status).toBe(200);
    // The batch is younger than maxAgeMs (60 s): only the drain can have written it.
    expect(readRows(dir, 'HubbleFlows')).toHaveLength(0);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(readRows(dir, 'HubbleFlows').map((r) => r.Uuid)).toEqual(['sigterm-1']);
    const logs = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string });
    expect(logs.map((l) => l.msg)).toContain('drained; bye');
  });
});

describe('server.metricsPort', () => {
  it('puts /metrics, /healthz and /readyz on a port of their own, off the ingest port', async () => {
    const { spawnService } = await import('../support/child-service.js');
    const dir = tmp();
    const metricsPort = 40000 + Math.floor(Math.random() * 10000);
    const child = await spawnService({ HUBBLE_ADX_SERVER__METRICS_PORT: String(metricsPort), HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'data'), HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool') });
    try {
      for (const path of ['/metrics', '/healthz', '/readyz']) {
        expect((await fetch(`http://127.0.0.1:${metricsPort}${path}`)).status).toBe(200);
        expect((await fetch(`http://127.0.0.1:${child.port}${path}`)).status).toBe(404);
      }
      const res = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: jsonLinesBody([{ log: '{"flow":{"verdict":"FORWARDED"}}' }]), headers: { 'content-type': 'application/x-ndjson' } });
      expect(res.status).toBe(200);
    } finally {
      child.proc.kill('SIGKILL');
    }
  });
});
