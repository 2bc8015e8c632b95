import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/index.js';
import { RetryPolicy } from '../retry-policy.js';
import { credentialFor } from './kusto/connection.js';
import { KustoSink } from './kusto/kusto-sink.js';
import { LocalFileSink } from './local-files.js';
import type { Sink } from './types.js';

export function createSink(config: Config, metrics: Metrics, log: Logger): Sink {
  if (config.sink.type === 'local') return new LocalFileSink({ ...config.sink.local, tableNames: config.sink.tables });
  return createKustoSink(config, metrics, log);
}

export function createKustoSink(config: Config, metrics: Metrics, log: Logger): KustoSink {
  const k = config.sink.kusto;
  metrics.deadLetterLimit.set(k.deadLetterMaxBytes);
  // loadConfig has checked that both are set for sink.type kusto.
  return new KustoSink(
    { ...k, clusterUrl: k.clusterUrl!, database: k.database!, tableNames: config.sink.tables, credential: credentialFor(k), retry: new RetryPolicy(config.retry.minDelayMs, config.retry.maxDelayMs) },
    metrics,
    log,
  );
}
