import type { FastifyInstance } from 'fastify';
import type { Config } from './config/index.js';
import { createMetrics, type Metrics } from './metrics/index.js';
import { Pipeline, type PipelineOptions } from './pipeline.js';
import { buildHealthServer, buildReceiver, InflightBytes } from './receive/index.js';
import { createSink, type Sink } from './sink/index.js';

export interface Service {
  app: FastifyInstance;
  /** /metrics, /healthz and /readyz on `server.metricsPort`, when it is set; else they are on `app`. */
  health: FastifyInstance | null;
  pipeline: Pipeline;
  metrics: Metrics;
  /** Send what an earlier run left in the spool; call before or right after listen. */
  recover(): Promise<number>;
  /**
   * Drain: refuse new requests with 503, deliver what was accepted within graceMs (default: no
   * limit), close the sink and server. Resolves to whether everything was delivered.
   */
  stop(graceMs?: number): Promise<boolean>;
}

export interface ServiceOptions {
  sink?: Sink;
  metrics?: Metrics;
  /** pino logger options, or false in tests. */
  logger?: boolean | object;
  /** `replay` runs the pipeline as a run of its own kind. */
  runKind?: PipelineOptions['runKind'];
  /** The spool lock was lost: the process must stop (the service exits non-zero). */
  fatal?: PipelineOptions['fatal'];
}

/** Build the whole service from a validated config; `app.listen` is left to the caller. */
export function createService(config: Config, opts: ServiceOptions = {}): Service {
  const metrics = opts.metrics ?? createMetrics();
  const logger = opts.logger ?? { level: config.log.level };
  // Decoded bodies take heap whoever decodes them: the receiver, or the record queue reading a
  // parked or replayed request back from the spool. One line of turns for both.
  const decodeTurns = new InflightBytes(config.limits.maxInflightRequests, config.limits.maxInflightBytes, config.limits.maxWaitingBytes);
  const app = buildReceiver(
    {
      refuseReason: () => pipeline.refuseReason(),
      notReadyReason: () => pipeline.notReadyReason(),
      ingest: (request) => pipeline.ingest(request),
      refused: () => pipeline.refused(),
    },
    metrics,
    {
      auth: config.auth,
      limits: config.limits,
      retryAfterSeconds: config.server.retryAfterSeconds,
      jsonDateKey: config.server.jsonDateKey,
      logger,
      healthRoutes: config.server.metricsPort === 0,
      decodeTurns,
    },
  );
  const health = config.server.metricsPort === 0 ? null : buildHealthServer({ notReadyReason: () => pipeline.notReadyReason() }, metrics, logger);
  const pipeline = new Pipeline(config, metrics, opts.sink ?? createSink(config, metrics), app.log, {
    ...(opts.runKind ? { runKind: opts.runKind } : {}),
    ...(opts.fatal ? { fatal: opts.fatal } : {}),
    decodeTurn: (bytes) => decodeTurns.wait(bytes),
  });
  let stopping: Promise<boolean> | null = null;
  return {
    app,
    health,
    pipeline,
    metrics,
    recover: () => pipeline.recover(),
    stop(graceMs?: number) {
      stopping ??= (async () => {
        const delivered = await pipeline.close(graceMs);
        await app.close();
        await health?.close();
        return delivered;
      })();
      return stopping;
    },
  };
}
