import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configSchema, type Config } from '../../src/config/index.js';
import type { Sink } from '../../src/sink/index.js';
import { createService, type Service } from '../../src/service.js';
import { metricValue } from '../support/metric-value.js';

export { metricValue };

export interface Running {
  service: Service;
  url: string;
  dir: string;
  config: Config;
  /** Flush pending rows, then read every row the local sink wrote for a table. */
  rows(table: 'HubbleFlows' | 'HubbleEvents' | 'HubbleDeadLetters' | 'HubbleIdentities' | 'HubbleCoverage'): Promise<Record<string, unknown>[]>;
  post(body: Buffer, headers: Record<string, string>, path?: string): Promise<Response>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/** Start the real service on 127.0.0.1 with an ephemeral port and a temporary local sink. */
export async function startService(overrides: DeepPartial<Config> = {}, sink?: Sink): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-test-'));
  const raw = {
    // Coverage windows of an hour: a test that counts rows sees only the last one, at its stop.
    coverage: { windowSeconds: 3600, ...(overrides.coverage ?? {}) },
    ...overrides,
    sink: { ...(overrides.sink ?? {}), local: { directory: dir, ...(overrides.sink?.local ?? {}) } },
    spool: { directory: join(dir, 'spool'), ...(overrides.spool ?? {}) },
  };
  const config = configSchema.parse(raw);
  const service = createService(config, { logger: false, ...(sink ? { sink } : {}) });
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  await service.recover();
  const addr = service.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  const url = `http://127.0.0.1:${addr.port}`;
  let stopped = false;
  return {
    service,
    url,
    dir,
    config,
    async rows(table) {
      await service.pipeline.flush();
      return readRows(dir, table);
    },
    post(body, headers, path = '/') {
      return fetch(url + path, { method: 'POST', body, headers });
    },
    async metric(name, labels = {}) {
      const text = await (await fetch(`${url}/metrics`)).text();
      return metricValue(text, name, labels);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The rows the local sink has written so far. The service may be in the middle of appending a
 * batch (in another process, or between two awaits): only newline-terminated lines are rows yet.
 */
export function readRows(dir: string, table: string): Record<string, unknown>[] {
  const files = readdirSync(dir).filter((f) => f.startsWith(`${table}-`) && f.endsWith('.jsonl')).sort();
  return files.flatMap((f) => {
    const text = readFileSync(join(dir, f), 'utf8');
    return text
      .slice(0, text.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  });
}

