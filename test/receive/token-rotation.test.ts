import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/index.js';
import { isLoopbackHost, unauthenticatedExposure } from '../../src/receive/auth.js';
import { parseTokenFile } from '../../src/receive/token-file.js';
import { createService } from '../../src/service.js';
import { StartupError } from '../../src/startup-error.js';
import { startService, type Running } from '../helpers/service.js';
import { jsonLinesBody } from '../support/fluent-bit-bodies.js';
import { hubbleFixtureLines } from '../support/fixtures.js';

const OLD = 'old-token-0123456789abcdef';
const NEW = 'new-token-fedcba9876543210';

/**
 * A directory laid out as kubelet lays out a Secret volume: the file is a symlink through `..data`,
 * itself a symlink to a timestamped directory, and an update swaps `..data` in one rename.
 */
class SecretVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'hubble-adx-secret-'));
  private generation = 0;
  private current: string | null = null;

  constructor(files: Record<string, string>) {
    this.update(files);
    for (const name of Object.keys(files)) symlinkSync(join('..data', name), join(this.dir, name));
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  update(files: Record<string, string>): void {
    const gen = `..2026_11_20_08_00_00.${++this.generation}`;
    mkdirSync(join(this.dir, gen));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(this.dir, gen, name), text);
    symlinkSync(gen, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.current) rmSync(join(this.dir, this.current), { recursive: true });
    this.current = gen;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const flow = hubbleFixtureLines().find((l) => l.text.includes('"flow"'))!.text;
let sent = 0;
/**
 * A body as Fluent Bit sends it: each chunk a different body (the same bytes again would be a resend
 * of a chunk whose answer was lost, taken once); the line is a real flow, the record names its chunk.
 */
const chunk = () => jsonLinesBody([{ log: flow, chunk: sent++ }]);
const ndjson = { 'content-type': 'application/x-ndjson' };
const bearer = (token: string) => ({ ...ndjson, authorization: `Bearer ${token}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('bearer tokens from a file that rotates (auth.tokenFile)', () => {
  let svc: Running | null = null;
  let volume: SecretVolume | null = null;
  afterEach(async () => {
    await svc?.stop();
    volume?.remove();
    svc = null;
    volume = null;
  });

  it('a rotation drops no request: old and new both pass while the file holds both, then the old one gets 401', async () => {
    volume = new SecretVolume({ tokens: `${OLD}\n` });
    svc = await startService({ auth: { tokenFile: volume.path('tokens'), tokenFileCheckMs: 100 } });
    const running = svc;
    expect(await running.metric('hubble_adx_auth_bearer_tokens')).toBe(1);

    // A sender that never stops through the rotation (a Fluent Bit), with the token it has now.
    let token = OLD;
    let sending = true;
    const statuses: number[] = [];
    const sender = (async () => {
      for (let i = 0; sending && i < 5000; i++) statuses.push((await running.post(chunk(), bearer(token))).status);
    })();

    await sleep(200);
    volume.update({ tokens: `# rotation 2026-11: old until every sender has the new one\n${OLD}\n${NEW}\n` });
    await waitFor('both tokens', async () => (await running.metric('hubble_adx_auth_bearer_tokens')) === 2);
    await sleep(200);
    token = NEW; // Fluent Bit restarted with the new token
    await sleep(200);
    volume.update({ tokens: `${NEW}\n` });
    // Probes with the old token pass (and make rows) until the file without it is taken.
    let probesTaken = 0;
    await waitFor('the old token refused', async () => {
      const status = (await running.post(chunk(), bearer(OLD))).status;
      if (status === 200) probesTaken++;
      return status === 401;
    });
    await sleep(200);
    sending = false;
    await sender;

    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(await running.metric('hubble_adx_auth_bearer_tokens')).toBe(1);
    expect((await running.post(chunk(), bearer(NEW))).status).toBe(200);
    // Every request the sender made became its row: nothing answered 200 was dropped.
    expect(await running.rows('HubbleFlows')).toHaveLength(statuses.length + probesTaken + 1);
    expect(await running.metric('hubble_adx_bodies_rejected_total', { reason: 'unauthorized' })).toBe(1);
  }, 30_000);

  it('auth.bearerToken still passes beside the file, and a file that turns empty or unreadable keeps the tokens in force', async () => {
    volume = new SecretVolume({ tokens: `${OLD}\n` });
    svc = await startService({ auth: { bearerToken: 'fixed-token-0123456789', tokenFile: volume.path('tokens'), tokenFileCheckMs: 100 } });
    expect(await svc.metric('hubble_adx_auth_bearer_tokens')).toBe(2);
    expect((await svc.post(chunk(), bearer('fixed-token-0123456789'))).status).toBe(200);
    volume.update({ tokens: '\n# nothing yet\n' });
    await sleep(400);
    expect((await svc.post(chunk(), bearer(OLD))).status).toBe(200);
    rmSync(join(volume.dir, '..data'));
    await sleep(400);
    expect((await svc.post(chunk(), bearer(OLD))).status).toBe(200);
    expect((await svc.post(chunk(), bearer(NEW))).status).toBe(401);
  });

  it('a token file that cannot be read, or holds no token, stops the start naming auth.tokenFile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-tokens-'));
    const config = (tokenFile: string) => configSchema.parse({ auth: { tokenFile }, spool: { enabled: false }, sink: { local: { directory: dir } } });
    const start = (tokenFile: string) => () => createService(config(tokenFile), { logger: false });
    expect(start(join(dir, 'missing'))).toThrow(StartupError);
    expect(start(join(dir, 'missing'))).toThrow(/^auth\.tokenFile: cannot read .*missing \(ENOENT/);
    writeFileSync(join(dir, 'empty'), '# rotated out\n\n');
    expect(start(join(dir, 'empty'))).toThrow(/^auth\.tokenFile: .*empty: it holds no token$/);
    writeFileSync(join(dir, 'short'), `${OLD}\nshort\n`);
    expect(start(join(dir, 'short'))).toThrow(/^auth\.tokenFile: .*short: line 2 is shorter than 16 characters$/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses one token a line, leaves out blank lines and comments, and never quotes a token in a reason', () => {
    expect(parseTokenFile(`\n# comment\n  ${OLD}  \r\n${NEW}\n${OLD}\n`)).toEqual({ ok: true, tokens: [OLD, NEW] });
    const bad = parseTokenFile(`${OLD}\n${NEW} extra-secret-word\n`);
    expect(bad).toEqual({ ok: false, reason: 'line 2 holds white space inside the token' });
  });
});

describe('no credential on a non-loopback address', () => {
  it('is refused unless auth.allowUnauthenticated says so; loopback and any credential are fine', () => {
    expect(['127.0.0.1', '127.3.2.1', 'localhost', '::1', '[::1]'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.4', 'hubble-adx.local', '::ffff:10.0.0.1'].some(isLoopbackHost)).toBe(false);
    expect(unauthenticatedExposure('0.0.0.0', {})).toMatch(/^server\.host 0\.0\.0\.0 is not a loopback address and no credential is set/);
    expect(unauthenticatedExposure('0.0.0.0', { allowUnauthenticated: true })).toBeNull();
    expect(unauthenticatedExposure('0.0.0.0', { tokenFile: '/etc/hubble-adx-auth/tokens' })).toBeNull();
    expect(unauthenticatedExposure('0.0.0.0', { basicUser: 'fluent', basicPassword: 'bit' })).toBeNull();
    expect(unauthenticatedExposure('0.0.0.0', { basicUser: 'fluent' })).not.toBeNull();
    expect(unauthenticatedExposure('127.0.0.1', {})).toBeNull();
  });

  it('serve exits 1 with one line naming auth.allowUnauthenticated', () => {
    const cli = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../dist/src/cli.js');
    const r = spawnSync(process.execPath, [cli, 'serve'], { env: { PATH: process.env.PATH, HUBBLE_ADX_SERVER__HOST: '0.0.0.0', HUBBLE_ADX_SERVER__PORT: '0', HUBBLE_ADX_SPOOL__ENABLED: 'false' }, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^hubble-adx: auth\.allowUnauthenticated: server\.host 0\.0\.0\.0 is not a loopback address and no credential is set .*\n$/);
  });
});
