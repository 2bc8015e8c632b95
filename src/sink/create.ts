import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/index.js';
import { RetryPolicy } from '../retry-policy.js';
import { credentialFor } from './kusto/connection.js';
import { KustoSink } from './kusto/kusto-sink.js';
import { LocalFileSink } from './local-files.js';
import { RetryChain, type DeliveryObserver } from './retry-chain.js';
import type { Sink } from './types.js';

export function createSink(config: Config, metrics: Metrics): Sink {
  if (config.sink.type === 'local') return new LocalFileSink({ ...config.sink.local, tableNames: config.sink.tables });
  return createKustoSink(config, metrics);
}

export function createKustoSink(config: Config, metrics: Metrics): KustoSink {
  const k = config.sink.kusto;
  metrics.deadLetterLimit.set(k.deadLetterMaxBytes);
  // loadConfig has checked that both are set for sink.type kusto.
  return new KustoSink({ ...k, clusterUrl: k.clusterUrl!, database: k.database!, tableNames: config.sink.tables, credential: credentialFor(k) }, metrics);
}

/** The one retry chain around a sink, with the configured policy, timeout and fallback bounds. */
export function deliveryFor(sink: Sink, config: Config, metrics: Metrics, log: Logger): RetryChain {
  const k = config.sink.kusto;
  return new RetryChain(
    sink,
    {
      retry: new RetryPolicy(config.retry.minDelayMs, config.retry.maxDelayMs),
      attemptTimeoutMs: k.requestTimeoutMs,
      fallbackAfter: { attempts: k.retryMaxAttempts, ms: k.retryMaxAgeMs },
    },
    deliveryObserver(sink.name, metrics, log),
  );
}

/** What the retry chain reports, as metrics and structured logs. */
export function deliveryObserver(sinkName: string, metrics: Metrics, log: Logger): DeliveryObserver {
  const kusto = sinkName === 'kusto';
  return {
    retrying(batch, route, verdict, attempt, delayMs) {
      const table = batch.table;
      metrics.sinkErrors.inc({ table });
      if (kusto) {
        if (verdict.reason === 'throttled') metrics.kustoThrottled.inc({ table });
        metrics.kustoRetries.inc({ table, reason: verdict.reason });
      }
      log.warn({ table, route, attempt, rows: batch.rows, reason: verdict.reason, detail: verdict.detail, retryInMs: delayMs, sink: sinkName }, 'delivery failed; the batch is kept and retried');
    },
    fellBack(batch, from, reason) {
      if (kusto) metrics.kustoFallbacks.inc({ table: batch.table, reason });
      log.warn({ table: batch.table, rows: batch.rows, from, reason }, 'batch moved to the next route (queued ingestion)');
    },
    setAside(batch, verdict) {
      const table = batch.table;
      if (kusto) metrics.kustoPermanentErrors.inc({ table, reason: verdict.reason });
      metrics.sinkDeadLetteredRows.inc({ table, reason: verdict.reason }, batch.rows);
      log.error({ table, rows: batch.rows, reason: verdict.reason, detail: verdict.detail, status: verdict.status }, 'batch dead-lettered: ADX will not take it (redrive it after fixing the cause: hubble-adx redrive)');
    },
    cannotSetAside(batch, verdict, err) {
      metrics.sinkErrors.inc({ table: batch.table });
      log.error({ table: batch.table, rows: batch.rows, reason: verdict.reason, err }, 'batch refused for good and the dead-letter directory cannot take it; it stays pending');
    },
  };
}
