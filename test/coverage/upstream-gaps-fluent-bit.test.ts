import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import { linePosition, UpstreamGaps, upstreamGapsOptionsSchema, type LinePosition } from '../../src/coverage/upstream-gaps.js';
import { decodeBody, formatOf } from '../../src/receive/body.js';
import { FLUENT_BIT_DIR } from '../support/fixtures.js';

/**
 * Real Fluent Bit 4.2.8 requests, sent by the shipped deploy/fluent-bit/fluent-bit-file.conf
 * tailing /var/run/cilium/hubble/ (provenance: ../fixtures/fluent-bit/README.md), decoded by
 * hubble-adx's own decoder and fed to the tracker as the service would: a 2xx request's positions
 * observed, a 503 noted as a refusal, a 401 dropped by Fluent Bit (it does not retry a 4xx).
 */
const DIR = join(FLUENT_BIT_DIR, 'tail-offsets');
const GRACE = 300_000;
const T0 = Date.UTC(2026, 0, 1);
const EXPORT = '/var/run/cilium/hubble/events.log';
const config = configSchema.parse({});

interface Request {
  answered: number;
  atMs: number;
  positions: LinePosition[];
  records: Record<string, unknown>[];
}

async function scenario(name: string): Promise<Request[]> {
  const n = readdirSync(DIR).filter((f) => f.startsWith(`${name}.`) && f.endsWith('.body')).length;
  const out: Request[] = [];
  for (let i = 1; i <= n; i++) {
    const meta = JSON.parse(readFileSync(join(DIR, `${name}.${i}.headers.json`), 'utf8')) as { headers: Record<string, string>; answered: number; atMs: number };
    const d = await decodeBody(readFileSync(join(DIR, `${name}.${i}.body`)), formatOf(meta.headers['content-type'])!, meta.headers['content-encoding'], config.limits, config.server.jsonDateKey);
    if (!d.ok) throw new Error(d.error.message);
    expect(d.decoded.bad).toEqual([]);
    const records = d.decoded.records.map((r) => r.record);
    out.push({ answered: meta.answered, atMs: meta.atMs, records, positions: records.map((r) => linePosition(r)!) });
  }
  return out;
}

/** What hubble-adx would have made of the requests, one window closing after the grace time. */
function replay(requests: Request[]) {
  const t = new UpstreamGaps(upstreamGapsOptionsSchema.parse({ graceMs: GRACE }));
  for (const r of requests) {
    if (r.answered >= 200 && r.answered < 300) t.observe(r.positions, T0 + r.atMs);
    else if (r.answered >= 500 || r.answered === 429) t.refused(T0 + r.atMs);
  }
  return t.closeWindow(T0 + Math.max(...requests.map((r) => r.atMs)) + GRACE);
}

const bytes = (ps: LinePosition[]) => ps.reduce((n, p) => n + Buffer.byteLength(p.line as string, 'utf8') + 1, 0);
const accepted = (rs: Request[]) => rs.filter((r) => r.answered === 200).flatMap((r) => r.positions);
const flowNumbers = (rs: Request[]) => accepted(rs).map((p) => Number(/"uuid":"00000000-0000-4000-8000-(\d+)"/.exec(p.line as string)![1]));

describe('upstream gaps over real Fluent Bit 4.2.8 requests', () => {
  it('each record carries log_file, log_offset and log, in that order; a line takes its UTF-8 bytes and its newline', async () => {
    for (const name of ['rotation-restart', 'drop-401', 'restart-backlog', 'backup-deleted']) {
      for (const r of await scenario(name)) {
        for (const rec of r.records) expect(Object.keys(rec), name).toEqual(['log_file', 'log_offset', 'log']);
        for (let i = 1; i < r.positions.length; i++) {
          const [a, b] = [r.positions[i - 1]!, r.positions[i]!];
          if (a.file === b.file && b.offset !== 0) expect(b.offset, name).toBe(a.offset + bytes([a]));
        }
      }
    }
    // Some lines hold non-ASCII labels: string length would not do.
    const lines = (await scenario('rotation-restart')).flatMap((r) => r.positions);
    expect(lines.some((p) => Buffer.byteLength(p.line as string, 'utf8') > (p.line as string).length)).toBe(true);
  });

  it('rotation while Fluent Bit was down and two restarts: every flow arrives, nothing missing, three reads', async () => {
    const rs = await scenario('rotation-restart');
    expect(flowNumbers(rs).sort((a, b) => a - b)).toEqual([...Array(24).keys()]);
    // The second process reads the live file again from offset 0 (its DB offset) and the backup from its head.
    expect(rs.map((r) => [r.positions[0]!.file, r.positions[0]!.offset])).toEqual([
      [EXPORT, 0],
      [EXPORT, bytes(rs[0]!.positions)],
      ['/var/run/cilium/hubble/events-2026-01-01T00-00-00.000.log', 0],
      [EXPORT, 0],
      [EXPORT, bytes(rs[3]!.positions)],
    ]);
    expect(replay(rs)).toMatchObject({ missingBytes: 0, receivedBytes: bytes(accepted(rs)), duplicateBytes: 0, sequencesStarted: 3 });
  });

  it('a chunk Fluent Bit dropped on a 401 is missing: its bytes, its file, its range', async () => {
    const rs = await scenario('drop-401');
    const dropped = rs.find((r) => r.answered === 401)!.positions;
    const r = replay(rs);
    expect(r.missing).toEqual([{ file: EXPORT, bytes: bytes(dropped), ranges: [[dropped[0]!.offset, dropped.at(-1)!.offset + bytes(dropped.slice(-1))]] }]);
    expect(r.missingBytes).toBe(bytes(dropped));
  });

  it('chunks buffered across a restart arrive after the new process began its read at 0: nothing missing', async () => {
    const rs = await scenario('restart-backlog');
    expect(rs.map((r) => r.answered)).toEqual([503, 200, 200, 200]);
    expect(rs[1]!.positions[0]!.offset).toBe(0);
    expect(flowNumbers(rs).sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    expect(replay(rs)).toMatchObject({ missingBytes: 0, pendingBytes: 0, duplicateBytes: 0, sequencesStarted: 2 });
  });

  it('a line longer than Buffer_Max_Size (3 MiB) skipped by Fluent Bit shows as missing, undercounted by the buffers it dropped uncounted', async () => {
    const rs = await scenario('long-line');
    const [p] = rs.map((r) => r.positions);
    const gap = p![2]!.offset - (p![1]!.offset + bytes([p![1]!]));
    const r = replay(rs);
    expect(r.missing).toEqual([{ file: EXPORT, bytes: gap, ranges: [[p![1]!.offset + bytes([p![1]!]), p![2]!.offset]] }]);
    // 3 MiB and a newline were skipped; tail counted only what was left after discarding a full 2M buffer.
    expect(gap).toBe(3 * 1024 * 1024 + 1 - (2_000_000 - 1));
  });

  it('a backup deleted before Fluent Bit opened it leaves no trace in the offsets: flows lost, nothing missing', async () => {
    const rs = await scenario('backup-deleted');
    const got = flowNumbers(rs);
    expect([10, 11, 12].some((n) => got.includes(n))).toBe(false);
    expect(got).toHaveLength(16);
    expect(replay(rs)).toMatchObject({ missingBytes: 0, sequencesStarted: 2 });
  });
});

describe('upstream gaps through the service', () => {
  it('a chunk Fluent Bit dropped on a 401 is in HubbleCoverage: UpstreamGapBytes and the file, once the grace time is over', async () => {
    const { startService } = await import('../helpers/service.js');
    const svc = await startService({ coverage: { windowSeconds: 1, upstream: { graceMs: 1000 } } });
    try {
      const rs = await scenario('drop-401');
      const dropped = rs.find((r) => r.answered === 401)!.positions;
      for (let i = 1; i <= rs.length; i++) {
        if (rs[i - 1]!.answered !== 200) continue;
        const meta = JSON.parse(readFileSync(join(DIR, `drop-401.${i}.headers.json`), 'utf8')) as { headers: Record<string, string> };
        const { host: _h, 'content-length': _l, connection: _c, authorization: _a, ...headers } = meta.headers;
        expect((await svc.post(readFileSync(join(DIR, `drop-401.${i}.body`)), headers)).status).toBe(200);
      }
      let rows: Record<string, unknown>[] = [];
      for (const end = Date.now() + 8000; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
        rows = (await svc.rows('HubbleCoverage')).filter((r) => Number(r.UpstreamGapBytes) > 0);
        if (rows.length > 0) break;
      }
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ UpstreamGapBytes: bytes(dropped), UpstreamGaps: [{ File: EXPORT, Bytes: bytes(dropped) }] });
    } finally {
      await svc.stop();
    }
  });
});
