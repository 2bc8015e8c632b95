/**
 * The image as it ships: the Dockerfile's CMD (config/hubble-adx.yaml) and NODE_OPTIONS. Its
 * configuration keeps the safe defaults, and the largest bodies those limits let through, a few at
 * once in every format, leave the process alive, answered without a 5xx but 503, and under the
 * DaemonSet's memory limit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { readRows } from '../helpers/service.js';
import { spawnService, type Child } from '../support/child-service.js';
import { containerCommand, containerNodeOptions } from '../support/container-node-options.js';
import { CONTENT_TYPE, jsonBody, jsonLinesBody, msgpackBody } from '../support/fluent-bit-bodies.js';
import { flowLine } from '../support/hostile-bodies.js';
import { projectRoot } from '../support/project-root.js';

/** The DaemonSet's memory limit (deploy/kubernetes/overlays/daemonset). */
const CONTAINER_LIMIT_MIB = 384;
const AT_ONCE = 3;

const command = containerCommand();
const configFile = resolve(projectRoot(), command[command.indexOf('--config') + 1]!);

describe("the image's configuration", () => {
  it('runs serve with config/hubble-adx.yaml', () => {
    expect(command).toEqual(['serve', '--config', 'config/hubble-adx.yaml']);
  });

  it('is the defaults written out: no limit raised past what the image\'s heap was sized for', () => {
    expect(loadConfig({ file: configFile, env: {} })).toEqual(loadConfig({ env: {} }));
  });
});

type Format = 'msgpack' | 'json' | 'json_lines';
const FORMATS: Format[] = ['msgpack', 'json', 'json_lines'];
const TYPES: Record<Format, string> = { msgpack: CONTENT_TYPE.msgpack, json: CONTENT_TYPE.json, json_lines: CONTENT_TYPE.json_lines };
const encode = (f: Format, records: Record<string, unknown>[]) => (f === 'msgpack' ? msgpackBody(records) : f === 'json' ? jsonBody(records) : jsonLinesBody(records));

/**
 * `n` records whose encoded body is as close under `bytes` as a whole character of padding gets:
 * the body grows by n bytes per character (a string's header size aside, checked after).
 */
function recordsFilling(f: Format, n: number, bytes: number, record: (pad: string) => Record<string, unknown>): Record<string, unknown>[] {
  const make = (pad: number) => Array.from({ length: n }, () => record('p'.repeat(pad)));
  const base = encode(f, make(0)).length;
  let pad = Math.max(0, Math.floor((bytes - base) / n));
  let records = make(pad);
  while (pad > 0 && encode(f, records).length > bytes) records = make(--pad);
  return records;
}

interface LimitBody {
  name: string;
  body: Buffer;
  encoding?: string;
  /** Why the case cannot pass yet, when it cannot. */
  skip?: string;
}

/** The largest bodies the limits let through, for one format. */
function limitBodies(f: Format, l: Config['limits']): LimitBody[] {
  const agentLine = (pad: string) => ({ log: `level=info msg="ordinary agent log line" ${pad}` });
  const bodies: LimitBody[] = [];
  // A gzip bomb: a few KiB sent, just under maxDecompressedBytes once inflated, maxRecordsPerRequest records.
  const bomb = encode(f, recordsFilling(f, l.maxRecordsPerRequest, l.maxDecompressedBytes, agentLine));
  bodies.push({ name: `gzip of ${bomb.length} bytes, ${l.maxRecordsPerRequest} records`, body: gzipSync(bomb), encoding: 'gzip' });
  // A body of maxBodyBytes as sent: records as long as maxRecordBytes allows, each a line too long to parse.
  const perRecord = Math.floor(l.maxRecordBytes * 0.95);
  const n = Math.ceil(Math.min(l.maxBodyBytes, l.maxDecompressedBytes) / perRecord);
  const full = encode(f, recordsFilling(f, n, Math.min(l.maxBodyBytes, l.maxDecompressedBytes), (pad) => ({ log: `{"flow":{"uuid":"long","Summary":"${pad}"}}` })));
  bodies.push({ name: `${full.length}-byte body of ${n} long lines`, body: full });
  // The most values: maxValuesPerRequest objects (JSON counts containers) or values (msgpack), in
  // records under maxRecordBytes, containers under msgpack's 65,536 elements.
  const values = l.maxValuesPerRequest - 64;
  const perArray = 60_000;
  const arrays = Math.ceil(values / perArray);
  const recordsOf = (element: unknown, perRec: number) => {
    const out: Record<string, unknown>[] = [];
    for (let a = 0; a < arrays; a += perRec) {
      const rec: Record<string, unknown> = { log: 'x' };
      for (let i = a; i < Math.min(arrays, a + perRec); i++) rec[`a${i}`] = Array.from({ length: Math.min(perArray, values - i * perArray) }, () => element);
      out.push(rec);
    }
    return out;
  };
  // `{}` is 3 bytes of JSON, 300 int16s ~ 3 bytes of msgpack each: 9 arrays make ~1.6 MB a record.
  bodies.push({ name: `${values} values`, body: gzipSync(encode(f, recordsOf(f === 'msgpack' ? 300 : {}, 9))), encoding: 'gzip' });
  // The most flows: maxRecordsPerRequest minimal flows, each a row.
  const flows = encode(f, Array.from({ length: l.maxRecordsPerRequest }, (_, i) => ({ log: `{"flow":{"uuid":"${i}"}}` })));
  bodies.push({
    name: `${l.maxRecordsPerRequest} flows in one request`,
    body: gzipSync(flows),
    encoding: 'gzip',
  });
  return bodies;
}

describe('the largest bodies the image\'s limits allow, a few at once, as the image runs', () => {
  const limits = loadConfig({ file: configFile, env: {} }).limits;
  let child: Child;
  let dir: string;
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hubble-adx-limits-'));
    child = await spawnService(
      {
        NODE_OPTIONS: containerNodeOptions(),
        // Only where it writes differs from the image: the limits are the file's.
        HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'data'),
        HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'),
      },
      undefined,
      command,
    );
  });
  afterAll(async () => {
    if (child && child.proc.exitCode === null) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function validFlowArrives(uuid: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    let status = 0;
    while (status !== 200 && Date.now() < deadline) {
      status = (await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: jsonLinesBody([{ log: flowLine(uuid) }]), headers: { 'content-type': CONTENT_TYPE.json_lines } })).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    while (!readRows(join(dir, 'data'), 'HubbleFlows').some((r) => r.Uuid === uuid)) {
      if (Date.now() > deadline) throw new Error(`flow ${uuid} did not arrive`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  for (const f of FORMATS) {
    for (const b of limitBodies(f, limits)) {
      const test = b.skip ? it.skip : it;
      test(`${f}: ${AT_ONCE} at once of ${b.name}: alive, no 5xx but 503, peak RSS under ${CONTAINER_LIMIT_MIB} MiB`, async () => {
        expect(b.body.length).toBeLessThanOrEqual(limits.maxBodyBytes);
        const headers = { 'content-type': TYPES[f], ...(b.encoding ? { 'content-encoding': b.encoding } : {}) };
        const answers = await Promise.all(
          Array.from({ length: AT_ONCE }, async () => {
            const res = await fetch(`http://127.0.0.1:${child.port}/`, { method: 'POST', body: b.body, headers });
            return { status: res.status, body: await res.text() };
          }),
        );
        // At the limits, not past them: taken (or pushed back), never refused as too large.
        for (const a of answers) expect([200, 503], a.body).toContain(a.status);
        expect(child.proc.exitCode).toBeNull();
        await validFlowArrives(`after-limits-${n++}`);
        expect(child.peakRssMiB()).toBeLessThan(CONTAINER_LIMIT_MIB);
      }, 120_000);
    }
  }
});
