import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configReference, loadConfig } from '../../src/config/index.js';

function yamlFile(text: string): string {
  const f = join(mkdtempSync(join(tmpdir(), 'hubble-adx-cfg-')), 'config.yaml');
  writeFileSync(f, text);
  return f;
}

function problemsOf(fn: () => unknown): { key: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('needs nothing: the defaults run the local sink on loopback', () => {
    const c = loadConfig({ env: {} });
    expect(c.server.host).toBe('127.0.0.1');
    expect(c.sink.type).toBe('local');
    expect(c.sink.tables.flows).toBe('HubbleFlows');
  });

  it('reads YAML, and environment variables override it', () => {
    const file = yamlFile('cluster: aks-prod\nserver:\n  port: 9000\nextract:\n  logKeys: [log]\n');
    const c = loadConfig({ file, env: { HUBBLE_ADX_SERVER__PORT: '9100', HUBBLE_ADX_AUTH__BEARER_TOKEN: '0123456789abcdef-token', HUBBLE_ADX_BATCH__MAX_ROWS: '100' } });
    expect(c.cluster).toBe('aks-prod');
    expect(c.server.port).toBe(9100);
    expect(c.auth.bearerToken).toBe('0123456789abcdef-token');
    expect(c.batch.maxRows).toBe(100);
    expect(c.extract.logKeys).toEqual(['log']);
  });

  it('keeps a numeric-looking string a string when the key is a string', () => {
    expect(loadConfig({ env: { HUBBLE_ADX_CLUSTER: '0123' } }).cluster).toBe('0123');
  });

  it('names the bad key: unknown keys, wrong types, out-of-range values', () => {
    const file = yamlFile('server:\n  prot: 9000\n  port: "x"\nbatch:\n  maxRows: 0\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    expect(problems.map((p) => p.key).sort()).toEqual(['batch.maxRows', 'server.port', 'server.prot']);
    expect(problems.find((p) => p.key === 'server.prot')!.message).toBe('unknown key');
  });

  it('names an unknown HUBBLE_ADX_ environment variable instead of ignoring it', () => {
    const problems = problemsOf(() => loadConfig({ env: { HUBBLE_ADX_SERVER__PROT: '1' } }));
    expect(problems).toEqual([{ key: 'HUBBLE_ADX_SERVER__PROT', message: expect.stringMatching(/unknown environment variable/) }]);
  });

  it('says when the file is missing or not YAML', () => {
    expect(problemsOf(() => loadConfig({ file: '/nonexistent/x.yaml', env: {} }))[0]!.message).toMatch(/cannot read/);
    expect(problemsOf(() => loadConfig({ file: yamlFile('a: [1,'), env: {} }))[0]!.message).toMatch(/not valid YAML/);
  });

  it('basic auth user and password go together', () => {
    expect(problemsOf(() => loadConfig({ env: { HUBBLE_ADX_AUTH__BASIC_USER: 'u' } }))[0]!.key).toBe('auth.basicPassword');
  });

  it('the reference lists every key with its environment variable', () => {
    const ref = configReference();
    expect(ref).toContain('| `server.port` | `HUBBLE_ADX_SERVER__PORT` | `9880` |');
    expect(ref).toContain('`auth.bearerToken` | `HUBBLE_ADX_AUTH__BEARER_TOKEN` | (unset)');
  });
});
