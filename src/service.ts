import type { FastifyInstance } from 'fastify';
import type { Config } from './config/index.js';
import { createMetrics, type Metrics } from './metrics/index.js';
import { Pipeline } from './pipeline.js';
import { buildReceiver } from './receive/index.js';
import { createSink, type Sink } from './sink/index.js';

export interface Service {
  app: FastifyInstance;
  pipeline: Pipeline;
  metrics: Metrics;
  /** Drain: refuse new requests with 503, write everything accepted, close the sink and server. */
  stop(): Promise<void>;
}

export interface ServiceOptions {
  sink?: Sink;
  metrics?: Metrics;
  /** pino logger options, or false in tests. */
  logger?: boolean | object;
}

/** Build the whole service from a validated config; `app.listen` is left to the caller. */
export function createService(config: Config, opts: ServiceOptions = {}): Service {
  const metrics = opts.metrics ?? createMetrics();
  const logger = opts.logger ?? { level: config.log.level };
  const app = buildReceiver(
    {
      refuseReason: () => pipeline.refuseReason(),
      ingest: (d, f) => pipeline.ingest(d, f),
      setAside: (parts, stage) => pipeline.setAside(parts, stage),
    },
    metrics,
    {
      auth: config.auth,
      limits: config.limits,
      retryAfterSeconds: config.server.retryAfterSeconds,
      jsonDateKey: config.server.jsonDateKey,
      logger,
    },
  );
  const pipeline = new Pipeline(config, metrics, opts.sink ?? createSink(config, metrics, app.log), app.log);
  let stopping: Promise<void> | null = null;
  return {
    app,
    pipeline,
    metrics,
    stop() {
      stopping ??= (async () => {
        await pipeline.close();
        await app.close();
      })();
      return stopping;
    },
  };
}
