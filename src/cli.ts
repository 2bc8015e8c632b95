#!/usr/bin/env node
import { accessSync, constants, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeSystemError, StartupError } from './startup-error.js';
import { ConfigError, configReference, loadConfig } from './config/index.js';
import { TABLES, createTableCommand, kqlFiles, schemaMarkdown, type TableKey } from './schema/index.js';
import { createService } from './service.js';
import { SpoolLostError } from './spool/index.js';
import { replay } from './replay.js';
import { redrive } from './redrive.js';
import Fastify from 'fastify';
import { createMetrics } from './metrics/index.js';
import { updateDocs, writeKqlFiles } from './docs.js';
import { unauthenticatedExposure } from './receive/auth.js';

const USAGE = `hubble-adx — Cilium Hubble flow logs from Fluent Bit into Azure Data Explorer

Usage:
  hubble-adx serve  [--config FILE]            run the receiver for Fluent Bit's http output
  hubble-adx replay FILE|- [--config FILE]     feed a saved cilium-agent log (or kubectl logs) through the pipeline
  hubble-adx redrive [DIR] [--config FILE]     send dead-letter batches to ADX again (DIR: sink.kusto.deadLetterDirectory)
  hubble-adx schema [--format kql|markdown|json]  print the table schema
  hubble-adx kql    [--config FILE]             print the database setup: tables, mappings, policies, view, functions
  hubble-adx config-reference                  print every configuration key

Configuration: YAML file (--config or HUBBLE_ADX_CONFIG) plus HUBBLE_ADX_<SECTION>__<KEY> variables.
With no configuration, rows go to JSON-lines files under ./data (the local sink).`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, format: { type: 'string', default: 'kql' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE + '\n');
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case 'serve':
      return serve(values.config);
    case 'replay': {
      const file = rest[0];
      if (!file) {
        process.stderr.write('replay needs a FILE, or - for standard input\n');
        return 2;
      }
      return runReplay(file, values.config);
    }
    case 'redrive':
      return runRedrive(rest[0], values.config);
    case 'schema':
      process.stdout.write(printSchema(values.format ?? 'kql') + '\n');
      return 0;
    case 'kql': {
      // The setup KQL for the configured table names (deploy/kusto/ has it for the defaults).
      const config = loadConfig({ file: values.config });
      const files = kqlFiles(config.sink.tables);
      process.stdout.write(Object.entries(files).map(([name, text]) => `// ===== ${name}\n${text}`).join('\n'));
      return 0;
    }
    case 'config-reference':
      process.stdout.write(configReference() + '\n');
      return 0;
    case 'docs': {
      // Maintainers: regenerate the docs' schema and configuration sections (ROOT: the project).
      const changed = updateDocs(rest[0] ?? '.');
      const kql = writeKqlFiles(rest[1] ?? 'deploy/kusto');
      process.stdout.write(`docs: ${changed.length > 0 ? changed.join(', ') + ' updated' : 'up to date'}; deploy/kusto: ${kql.length > 0 ? kql.join(', ') + ' written' : 'up to date'}\n`);
      return 0;
    }
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

function printSchema(format: string): string {
  const keys = Object.keys(TABLES) as TableKey[];
  if (format === 'markdown') return schemaMarkdown();
  if (format === 'json') return JSON.stringify(Object.fromEntries(keys.map((k) => [TABLES[k].defaultName, TABLES[k].columns])), null, 2);
  return keys.map((k) => createTableCommand(k)).join('\n\n');
}

/** Whether `serve` began: its listening servers keep the process alive, so a failure must exit. */
let serving = false;

async function serve(configFile: string | undefined): Promise<number> {
  serving = true;
  const config = loadConfig({ file: configFile });
  const exposed = unauthenticatedExposure(config.server.host, config.auth);
  if (exposed) throw new StartupError('auth.allowUnauthenticated', exposed);
  const service = createService(config, {
    // Another process may own the spool now: answer nothing more, and let the kubelet restart the pod.
    fatal: () => process.exit(75),
  });
  const { app } = service;
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      app.log.warn({ signal: sig }, 'second signal: exiting without waiting for the drain');
      process.exit(1);
    }
    app.log.info({ signal: sig, pendingRows: service.pipeline.pendingRows }, 'draining: refusing new requests, writing what was accepted');
    service.stop(config.shutdown.graceMs).then(
      (delivered) => {
        app.log.info({ delivered, pendingRows: service.pipeline.pendingRows }, delivered ? 'drained; bye' : 'grace period over; the rest stays in the spool; bye');
        process.exit(0);
      },
      (err: unknown) => {
        app.log.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (config.sink.type === 'local') {
    const dir = config.sink.local.directory;
    await startupStep('sink.local.directory', `cannot create ${dir}`, () => mkdirSync(dir, { recursive: true, mode: 0o700 }));
  }
  const { host, port, metricsHost, metricsPort } = config.server;
  await startupStep('server.port', `cannot listen on ${host}:${port}`, () => app.listen({ host, port }));
  const health = service.health;
  if (health) await startupStep('server.metricsPort', `cannot listen on ${metricsHost}:${metricsPort}`, () => health.listen({ host: metricsHost, port: metricsPort }));
  // Listening first lets /healthz answer; requests get 503 (starting) until the spool is taken and read.
  await service.recover();
  app.log.info({ sink: config.sink.type, directory: config.sink.type === 'local' ? config.sink.local.directory : undefined }, 'hubble-adx ready');
  return new Promise<number>(() => undefined);
}

/** One step of starting up; its failure is one line naming the key at fault. */
async function startupStep(key: string, what: string, step: () => unknown): Promise<void> {
  try {
    await step();
  } catch (err) {
    throw new StartupError(key, `${what} (${describeSystemError(err)})`);
  }
}

async function runReplay(file: string, configFile: string | undefined): Promise<number> {
  // A replay is a run of its own: it never takes the service's spool, and its coverage rows say `replay`.
  const loaded = loadConfig({ file: configFile });
  const config = { ...loaded, spool: { ...loaded.spool, enabled: false } };
  const service = createService(config, { logger: { level: config.log.level }, runKind: 'replay' });
  await service.recover();
  let summary;
  try {
    summary = await replay(file === '-' ? process.stdin : file, service.pipeline);
  } catch (err) {
    await service.stop();
    process.stderr.write(`hubble-adx: replay: cannot read ${file} (${describeSystemError(err)})\n`);
    return 1;
  }
  await service.stop();
  process.stdout.write(JSON.stringify({ ...summary, sink: config.sink.type, directory: config.sink.local.directory }) + '\n');
  return 0;
}

async function runRedrive(dirArg: string | undefined, configFile: string | undefined): Promise<number> {
  const config = loadConfig({ file: configFile });
  if (config.sink.type !== 'kusto') {
    process.stderr.write('hubble-adx: redrive sends to ADX: set sink.type to kusto (with sink.kusto.clusterUrl and database)\n');
    return 2;
  }
  const dir = dirArg ?? config.sink.kusto.deadLetterDirectory;
  try {
    accessSync(dir, constants.R_OK | constants.W_OK);
  } catch (err) {
    process.stderr.write(`hubble-adx: redrive: cannot use ${dir} (${describeSystemError(err)})\n`);
    return 1;
  }
  // The service's logger type, without its server; on stderr, so that stdout is the summary alone.
  const log = Fastify({ logger: { level: config.log.level, stream: process.stderr } }).log;
  const summary = await redrive(dir, config, createMetrics({ defaultMetrics: false }), log);
  process.stdout.write(JSON.stringify({ directory: dir, ...summary }) + '\n');
  return summary.refusedAgain > 0 || summary.left > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`hubble-adx: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (err instanceof SpoolLostError) {
      // Lost while starting (frozen during recovery, say): the same exit as when running.
      process.stderr.write(`hubble-adx: ${err.message}\n`);
      process.exit(75);
    }
    if (err instanceof StartupError) {
      process.stderr.write(`hubble-adx: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`hubble-adx: ${(err as Error).stack ?? String(err)}\n`);
    // A service that failed to start must not stay up with its ports open and nothing behind them.
    if (serving) process.exit(1);
    process.exitCode = 1;
  },
);
