/**
 * What the attack scripts share: the built CLI run as the image runs it (its V8 flags), against
 * the local ADX protocol server, with real signals. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { containerNodeOptions } from '../../test/support/container-node-options.js';
import { jsonLinesBody } from '../../test/support/fluent-bit-bodies.js';
import { projectRoot } from '../../test/support/project-root.js';

export const CLI = join(projectRoot(), 'dist', 'src', 'cli.js');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Svc {
  child: ChildProcess;
  port: number;
  out: () => string;
  exit: Promise<{ code: number | null; signal: string | null }>;
}

/** The torture's environment: ADX at `adxUrl`, a small lock stale time, short windows. */
export function serviceEnv(adxUrl: string, spool: string, dead: string, port: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    NODE_OPTIONS: containerNodeOptions(),
    NODE_NAME: 'attack-node',
    HUBBLE_ADX_SERVER__PORT: String(port),
    HUBBLE_ADX_SERVER__RETRY_AFTER_SECONDS: '1',
    HUBBLE_ADX_LOG__LEVEL: 'warn',
    HUBBLE_ADX_SINK__TYPE: 'kusto',
    HUBBLE_ADX_SINK__KUSTO__CLUSTER_URL: adxUrl,
    HUBBLE_ADX_SINK__KUSTO__DATABASE: 'hubble',
    HUBBLE_ADX_SINK__KUSTO__AUTH: 'none',
    HUBBLE_ADX_SINK__KUSTO__DEAD_LETTER_DIRECTORY: dead,
    HUBBLE_ADX_SPOOL__DIRECTORY: spool,
    HUBBLE_ADX_SPOOL__LOCK_STALE_MS: '2000',
    HUBBLE_ADX_COVERAGE__WINDOW_SECONDS: '1',
    HUBBLE_ADX_BATCH__MAX_AGE_MS: '100',
    HUBBLE_ADX_RETRY__MIN_DELAY_MS: '20',
    HUBBLE_ADX_RETRY__MAX_DELAY_MS: '200',
    HUBBLE_ADX_SHUTDOWN__GRACE_MS: '2000',
    ...extra,
  };
}

export function spawnSvc(env: (port: number) => Record<string, string>): Svc {
  const port = 20000 + Math.floor(Math.random() * 30000);
  const child = spawn(process.execPath, [CLI, 'serve'], { env: env(port), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, port, out: () => out, exit };
}

export async function ready(s: Svc, ms = 30_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end && s.child.exitCode === null && s.child.signalCode === null; await sleep(50)) {
    try {
      if ((await fetch(`http://127.0.0.1:${s.port}/readyz`, { signal: AbortSignal.timeout(1000) })).status === 200) return true;
    } catch {
      // not listening yet
    }
  }
  return false;
}

export async function post(s: Svc, body: Buffer, type = 'application/x-ndjson', ms = 5000): Promise<{ status: number; text: string }> {
  try {
    const r = await fetch(`http://127.0.0.1:${s.port}/`, { method: 'POST', body, headers: { 'content-type': type }, signal: AbortSignal.timeout(ms) });
    return { status: r.status, text: await r.text() };
  } catch (e) {
    return { status: 0, text: (e as Error).name };
  }
}

export async function stopHard(s: Svc): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGCONT');
    s.child.kill('SIGKILL');
  }
  await s.exit;
}

/** A cilium-agent CRI log record holding one exporter flow line (whole). */
export function flowLine(uuid: string, denied = true): string {
  const flow = {
    time: new Date().toISOString(),
    uuid,
    verdict: denied ? 'DROPPED' : 'FORWARDED',
    ...(denied ? { drop_reason_desc: 'POLICY_DENIED' } : {}),
    IP: { source: '10.1.2.3', destination: '10.200.0.1', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000, destination_port: 443 } },
    source: { namespace: 'shop', pod_name: 'web' },
    destination: { namespace: 'db', pod_name: 'pg-0' },
  };
  return JSON.stringify({ flow, node_name: 'attack/node', time: flow.time });
}

export const K8S = { namespace_name: 'kube-system', pod_name: 'cilium-x', container_name: 'cilium-agent' };

/** A json_lines body of whole flow lines. */
export function flowsBody(uuids: string[]): Buffer {
  return jsonLinesBody(uuids.map((u) => ({ log: flowLine(u), stream: 'stdout', kubernetes: K8S })));
}
