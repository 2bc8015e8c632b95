/**
 * Whoever can reach the receiver must not be able to stop, crash or flood it. Every attack runs
 * against the service as the image runs it (the Dockerfile's NODE_OPTIONS, spool on), and each is
 * followed by a valid flow that must still reach the sink within batch.maxAgeMs + 1 s.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnService, type Child } from '../support/child-service.js';
import { readRows } from '../helpers/service.js';
import { containerNodeOptions } from '../support/container-node-options.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import {
  deepJsonArray, deepJsonLine, flowLine, garbageFlows, gzipEmptyRecords, gzipTinyMsgpackValues, hugeStringFlow, lostEventsNewLabels, manyEmptyObjects, msgpackNestedArrays, newIdentities, poisonPill,
  snappyLiar, unfinishedPartials, zstdContentBomb, zstdWindowBomb, type HostileRequest,
} from '../support/hostile-bodies.js';

const CLI = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/src/cli.js');
/** The DaemonSet's memory limit (deploy/kubernetes/overlays/daemonset). */
const CONTAINER_LIMIT_MIB = 384;
const MAX_AGE_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `hubble-adx-${p}-`));

function imageEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_OPTIONS: containerNodeOptions(),
    HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'data'),
    HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
    HUBBLE_ADX_BATCH__MAX_AGE_MS: String(MAX_AGE_MS),
    ...extra,
  };
}

async function send(child: Child, req: HostileRequest, headers: Record<string, string> = {}): Promise<{ status: number; body: string; ms: number }> {
  const t0 = Date.now();
  const res = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: req.body, headers: { ...req.headers, ...headers } });
  return { status: res.status, body: await res.text(), ms: Date.now() - t0 };
}

/**
 * A valid flow posted now reaches the sink within batch.maxAgeMs + 1 s; `behindParked`: after the
 * requests parked before it, which are made into rows first (bounded: 30 s).
 */
async function validFlowArrives(child: Child, dir: string, uuid: string, behindParked = false): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: jsonLinesBody([{ log: flowLine(uuid) }]), headers: { 'content-type': 'application/x-ndjson' } });
  expect(res.status).toBe(200);
  const deadline = Date.now() + (behindParked ? 30_000 : MAX_AGE_MS + 1000);
  for (;;) {
    if (readRows(join(dir, 'data'), 'HubbleFlows').some((r) => r.Uuid === uuid)) return;
    if (Date.now() > deadline) throw new Error(`flow ${uuid} did not reach the sink within ${behindParked ? '30 s' : 'batch.maxAgeMs + 1 s'}`);
    await sleep(50);
  }
}

function deadLetters(dir: string): Record<string, unknown>[] {
  return readRows(join(dir, 'data'), 'HubbleDeadLetters');
}

describe('hostile input, against the service as the image runs it', () => {
  let child: Child;
  let dir: string;
  let n = 0;
  const alive = () => expect(child.proc.exitCode).toBeNull();

  beforeAll(async () => {
    dir = tmp('hostile');
    child = await spawnService(imageEnv(dir));
  });
  afterAll(() => {
    if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
  });

  it('a poison pill (a flow field nested 5,000 deep) is one dead letter; the flows after it are delivered, also after a restart', async () => {
    const r = await send(child, poisonPill('poison-1'));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ flows: 0, deadLettered: 1 });
    await validFlowArrives(child, dir, `after-poison-${n++}`);
    const dead = deadLetters(dir).filter((d) => d.Reason === 'too_deep');
    expect(dead).toHaveLength(1);
    expect(String(dead[0]!.RawData)).toContain('poison-1');

    // Killed before anything is acknowledged again: the poison request is replayed from the spool.
    await send(child, poisonPill('poison-2'));
    child.proc.kill('SIGKILL');
    await child.exited;
    child = await spawnService(imageEnv(dir));
    await validFlowArrives(child, dir, `after-restart-${n++}`);
    // Its dead letter is made again from the spool; it travels in its own table's batches, so it
    // may land just after the flow does.
    const tooDeep = () => deadLetters(dir).filter((d) => d.Reason === 'too_deep').length;
    const deadline = Date.now() + MAX_AGE_MS + 1000;
    while (tooDeep() < 2 && Date.now() < deadline) await sleep(50);
    expect(tooDeep()).toBeGreaterThanOrEqual(2);
  });

  it.each([deepJsonLine(5000), deepJsonLine(100_000), deepJsonArray(5000), deepJsonArray(100_000)])('$name is a 400 with the body kept as a dead letter', async (req) => {
    const before = deadLetters(dir).length;
    const r = await send(child, req);
    expect(r.status).toBe(400);
    alive();
    await validFlowArrives(child, dir, `after-deep-${n++}`);
    expect(deadLetters(dir).length).toBe(before + 1);
  });

  it.each([
    { req: gzipEmptyRecords(16 * 1024 * 1024 + 3), status: 413, reason: 'decompressed_too_large' },
    { req: gzipEmptyRecords(1024 * 1024), status: 413, reason: 'too_many_records' },
    { req: snappyLiar(1 << 20), status: 400, reason: 'invalid_compression' },
    { req: zstdWindowBomb(), status: 413, reason: 'decompressed_too_large' },
    { req: zstdContentBomb(), status: 413, reason: 'decompressed_too_large' },
    { req: hugeStringFlow(100 * 1024 * 1024), status: 413, reason: 'decompressed_too_large' },
    { req: msgpackNestedArrays(1000), status: 400, reason: 'no_valid_record' },
    { req: gzipTinyMsgpackValues(4 * 1024 * 1024), status: 413, reason: 'too_many_records' },
    { req: manyEmptyObjects(2_000_000), status: 413, reason: 'too_many_values' },
  ])('memory bomb: $req.name is refused ($status) before it is paid for', async ({ req, status, reason }) => {
    const r = await send(child, req);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body)).toMatchObject({ error: reason });
    expect(r.ms).toBeLessThan(3000);
    alive();
    await validFlowArrives(child, dir, `after-bomb-${n++}`);
    expect(child.peakRssMiB()).toBeLessThan(CONTAINER_LIMIT_MIB);
  });

  it('a flow line longer than limits.maxLineBytes is dead-lettered without being parsed', async () => {
    const r = await send(child, { name: 'long line', body: jsonLinesBody([{ log: flowLine('long-1', { Summary: 'y'.repeat(1536 * 1024) }) }]), headers: { 'content-type': 'application/x-ndjson' } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ flows: 0, deadLettered: 1 });
    await validFlowArrives(child, dir, `after-long-${n++}`);
    const row = deadLetters(dir).find((d) => d.Reason === 'line_too_long');
    expect(String(row?.RawData).length).toBeLessThanOrEqual(64 * 1024);
  });

  it('ever-new identities, unfinished CRI lines and lost-event labels stay within their caps over 20 requests each', async () => {
    for (let i = 0; i < 20; i++) expect((await send(child, newIdentities(i, 500))).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await send(child, unfinishedPartials(i, 100))).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await send(child, lostEventsNewLabels(i, 500))).status).toBe(200);
    alive();
    // Requests answered while others waited were parked: made into rows in order, before this flow.
    await validFlowArrives(child, dir, `after-state-${n++}`, true);
    expect(await child.metric('hubble_adx_state_evictions_total', { state: 'identities' })).toBeGreaterThan(0);
    expect(await child.metric('hubble_adx_state_evictions_total', { state: 'cri_partial_lines' })).toBeGreaterThan(0);
    expect(await child.metric('hubble_adx_cri_partial_bytes_pending')).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(await child.metric('hubble_adx_metric_label_values_capped_total')).toBeGreaterThan(0);
    const page = await (await fetch(`http://127.0.0.1:${child.port}/metrics`)).text();
    expect(page.length).toBeLessThan(256 * 1024);
    expect(child.peakRssMiB()).toBeLessThan(CONTAINER_LIMIT_MIB);
  }, 60_000);

  it('50,000 broken lines in one body make at most limits.maxDeadLetterRowsPerRequest + 1 dead-letter rows, and every one is counted', async () => {
    // Nothing parked before it (it is made into rows at once, and its answer says what it came to).
    await validFlowArrives(child, dir, `before-garbage-${n++}`, true);
    const before = deadLetters(dir).length;
    const counted = await child.metric('hubble_adx_dead_letters_total');
    const r = await send(child, garbageFlows(50_000));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ deadLettered: 50_000, deadLetterRows: 101 });
    await validFlowArrives(child, dir, `after-garbage-${n++}`);
    const rows = deadLetters(dir).slice(before);
    expect(rows).toHaveLength(101);
    const summary = rows.find((d) => d.Reason === 'summarized');
    expect(String(summary?.Message)).toContain('extract/invalid_json: 49900');
    expect((await child.metric('hubble_adx_dead_letters_total')) - counted).toBe(50_000);
  });

  it('a malformed Content-Type is a 4xx and is not logged as an error', async () => {
    const r = await send(child, { name: 'bad content type', body: Buffer.from('{}'), headers: { 'content-type': ';' } });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(child.logs()).not.toMatch(/"level":50/);
  });
});

describe('credentials, slow senders and shutdown', () => {
  const TOKEN = 'correct-horse-battery-staple-0123';
  let child: Child;
  let dir: string;
  beforeAll(async () => {
    dir = tmp('auth');
    child = await spawnService(imageEnv(dir, {
      HUBBLE_ADX_AUTH__BEARER_TOKEN: TOKEN,
      HUBBLE_ADX_AUTH__BASIC_USER: 'fluent',
      HUBBLE_ADX_AUTH__BASIC_PASSWORD: 'basic-secret-password',
      HUBBLE_ADX_LIMITS__REQUEST_TIMEOUT_MS: '2000',
      HUBBLE_ADX_SHUTDOWN__GRACE_MS: '2000',
    }));
  });
  afterAll(() => {
    if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
  });

  it.each([
    ['a token without the Bearer prefix', 'wrong-token-without-prefix-987654'],
    ['a token after a tab', 'Bearer\twrong-token-after-a-tab-987654'],
    ['a wrong basic password', `Basic ${Buffer.from('fluent:wrong-basic-password-987654').toString('base64')}`],
    ['an unknown scheme', 'Token wrong-token-unknown-scheme-987654'],
  ])('%s gets 401, and neither the answer nor the log quotes it', async (_what, header) => {
    const res = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: '{}\n', headers: { 'content-type': 'application/x-ndjson', authorization: header } });
    expect(res.status).toBe(401);
    const text = await res.text();
    for (const secret of ['987654', Buffer.from('fluent:wrong-basic-password-987654').toString('base64').slice(8, 30)]) {
      expect(text.toLowerCase()).not.toContain(secret.toLowerCase());
      expect(child.logs().toLowerCase()).not.toContain(secret.toLowerCase());
    }
  });

  it('credentials are checked before the body is read: a sender without them gets 401 without sending it', async () => {
    const answer = await new Promise<string>((resolveAnswer, reject) => {
      const sock = connect(child.port, '127.0.0.1', () => {
        sock.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 8000000\r\n\r\n`);
      });
      let got = '';
      sock.on('data', (d) => {
        got += d.toString();
        if (got.includes('\r\n\r\n')) {
          sock.destroy();
          resolveAnswer(got);
        }
      });
      sock.on('error', reject);
      setTimeout(() => reject(new Error('no answer before the body')), 3000);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 401/);
  });

  it('a body sent at one byte a second is cut off after limits.requestTimeoutMs', async () => {
    const t0 = Date.now();
    const closedAfter = await new Promise<number>((resolveClosed) => {
      const sock = connect(child.port, '127.0.0.1', () => {
        sock.write(`POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n`);
        const drip = setInterval(() => (sock.writable ? sock.write('{') : clearInterval(drip)), 1000);
        sock.on('close', () => {
          clearInterval(drip);
          resolveClosed(Date.now() - t0);
        });
      });
      sock.on('error', () => undefined);
    });
    expect(closedAfter).toBeGreaterThanOrEqual(1900);
    expect(closedAfter).toBeLessThan(2000 + 2500);
  }, 15_000);

  it('SIGTERM exits within shutdown.graceMs even while a slow body is still open', async () => {
    const sock = connect(child.port, '127.0.0.1', () => {
      sock.write(`POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n{`);
    });
    sock.on('error', () => undefined);
    await sleep(300);
    const t0 = Date.now();
    child.proc.kill('SIGTERM');
    const code = await child.exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(2000 + 1500);
    sock.destroy();
  }, 15_000);
});

describe('startup failures are one line naming the key', () => {
  const run = (args: string[], env: Record<string, string>) =>
    spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, NODE_OPTIONS: containerNodeOptions(), ...env }, encoding: 'utf8', timeout: 15_000 });

  it('a port in use: exit 1, server.port', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const dir = tmp('port');
    const r = run(['serve'], { HUBBLE_ADX_SERVER__PORT: String(port), HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'), HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'data') });
    blocker.close();
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/server\.port.*EADDRINUSE/);
  });

  it('a spool directory that cannot be made: exit 1, spool.directory', () => {
    const dir = tmp('spooldir');
    writeFileSync(join(dir, 'file'), 'not a directory');
    const r = run(['serve'], { HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'file', 'spool'), HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'data') });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('spool.directory');
  });

  it('a local sink directory that cannot be made: exit 1, sink.local.directory', () => {
    const dir = tmp('sinkdir');
    writeFileSync(join(dir, 'file'), 'not a directory');
    const r = run(['serve'], { HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'), HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'file', 'data') });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('sink.local.directory');
  });

  it.each([['a missing file', 'does-not-exist.log'], ['a directory', '.']])('replay of %s: exit 1, one line naming the file', (_what, file) => {
    const dir = tmp('replay');
    const target = file === '.' ? dir : join(dir, file);
    const r = run(['replay', target], { HUBBLE_ADX_SPOOL__ENABLED: 'false', HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'data') });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(target);
  });
});
