import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TABLES } from '../schema/index.js';
import { configSchema, type Config } from './schema.js';

export const ENV_PREFIX = 'HUBBLE_ADX_';

/** A configuration problem, with the key at fault so the operator knows what to change. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly { key: string; message: string }[], readonly origin: string) {
    super(`invalid configuration (${origin}):\n` + problems.map((p) => `  - ${p.key}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

type AnySchema = z.core.$ZodType;

/** Strip default/prefault/optional wrappers to reach the schema that describes the value. */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const def = s._zod.def as { type: string; innerType?: AnySchema };
    if ((def.type === 'default' || def.type === 'prefault' || def.type === 'optional') && def.innerType) s = def.innerType;
    else return s;
  }
}

function objectShape(schema: AnySchema): Record<string, AnySchema> | null {
  const def = unwrap(schema)._zod.def as { type: string; shape?: Record<string, AnySchema> };
  return def.type === 'object' && def.shape ? def.shape : null;
}

const squash = (s: string) => s.replace(/_/g, '').toLowerCase();

export interface ConfigKey {
  path: string[];
  env: string;
  schema: AnySchema;
}

/** Every leaf key of the schema with the environment variable that sets it. */
export function configKeys(schema: AnySchema = configSchema, prefix: string[] = []): ConfigKey[] {
  const shape = objectShape(schema);
  if (!shape) return [{ path: prefix, env: ENV_PREFIX + prefix.map(toEnvSegment).join('__'), schema }];
  return Object.entries(shape).flatMap(([k, v]) => configKeys(v, [...prefix, k]));
}

function toEnvSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const seg of path.slice(0, -1)) {
    const next = node[seg];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[seg] = {};
    node = node[seg] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/**
 * Environment overrides: HUBBLE_ADX_<SECTION>__<KEY>, e.g. HUBBLE_ADX_SERVER__PORT=9880 or
 * HUBBLE_ADX_AUTH__BEARER_TOKEN. Values are read as YAML scalars, so numbers, booleans and
 * `[a, b]` lists work. An unknown HUBBLE_ADX_ variable is an error, not a silent no-op.
 */
function envOverrides(env: NodeJS.ProcessEnv, problems: { key: string; message: string }[]): Record<string, unknown> {
  const byEnv = new Map(configKeys().map((k) => [squash(k.env), k]));
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined || name === `${ENV_PREFIX}CONFIG`) continue;
    const key = byEnv.get(squash(name));
    if (!key) {
      problems.push({ key: name, message: 'unknown environment variable (see the configuration reference)' });
      continue;
    }
    const isString = (unwrap(key.schema)._zod.def as { type: string }).type === 'string';
    setPath(out, key.path, isString ? raw : parseYaml(raw));
  }
  return out;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof b === 'object' && b !== null && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** Load YAML (optional) plus environment overrides, validated; throws ConfigError naming each bad key. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env[`${ENV_PREFIX}CONFIG`];
  const problems: { key: string; message: string }[] = [];
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError([{ key: '(file)', message: `cannot read ${file}: ${(err as Error).message}` }], file);
    }
    try {
      const doc = parseYaml(text) as unknown;
      if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
        throw new Error('the top level must be a mapping');
      }
      fromFile = (doc ?? {}) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([{ key: '(file)', message: `not valid YAML: ${(err as Error).message}` }], file);
    }
  }
  const merged = deepMerge(fromFile, envOverrides(env, problems));
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const base = issue.path.join('.');
      if (issue.code === 'unrecognized_keys') {
        for (const k of issue.keys) problems.push({ key: base ? `${base}.${k}` : k, message: 'unknown key' });
      } else {
        problems.push({ key: base || '(root)', message: issue.message });
      }
    }
  }
  const origin = [file ?? 'defaults', 'environment'].join(' + ');
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems, origin);
  const cfg = parsed.data;
  if (cfg.sink.type === 'kusto') {
    const missing = (['clusterUrl', 'database'] as const).filter((k) => !cfg.sink.kusto[k]);
    if (missing.length > 0) throw new ConfigError(missing.map((k) => ({ key: `sink.kusto.${k}`, message: 'required when sink.type is kusto' })), origin);
  }
  if (cfg.enrich.pseudonymize.enabled && !cfg.enrich.pseudonymize.key) {
    throw new ConfigError([{ key: 'enrich.pseudonymize.key', message: 'required when pseudonymization is enabled (set HUBBLE_ADX_ENRICH__PSEUDONYMIZE__KEY from a Secret)' }], origin);
  }
  const flowColumns = new Set((TABLES.flows.columns as readonly { name: string }[]).map((c) => c.name));
  const badKeys = cfg.aggregation.key.filter((k) => !flowColumns.has(k));
  if (badKeys.length > 0) throw new ConfigError(badKeys.map((k) => ({ key: 'aggregation.key', message: `"${k}" is not a column of the flows table` })), origin);
  if ((cfg.auth.basicUser === undefined) !== (cfg.auth.basicPassword === undefined)) {
    throw new ConfigError([{ key: 'auth.basicPassword', message: 'basicUser and basicPassword go together' }], origin);
  }
  return cfg;
}

/** Markdown rows for the README: key, env var, default, meaning. */
export function configReference(): string {
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  const lines = ['| key | environment variable | default | meaning |', '|---|---|---|---|'];
  for (const k of configKeys()) {
    let d: unknown = defaults;
    for (const seg of k.path) d = (d as Record<string, unknown> | undefined)?.[seg];
    const shown = d === undefined ? '(unset)' : `\`${JSON.stringify(d)}\``;
    const doc = (k.schema as unknown as { description?: string }).description ?? '';
    lines.push(`| \`${k.path.join('.')}\` | \`${k.env}\` | ${shown} | ${doc} |`);
  }
  return lines.join('\n');
}
