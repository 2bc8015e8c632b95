import { createServer } from 'node:http';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Metrics } from '../metrics/index.js';
import { credentialsOf, makeAuthCheck, type AuthSettings } from './auth.js';
import { TokenFile } from './token-file.js';
import { formatOf, parseBody, type BodyLimits, type BodyResult } from './body.js';
import { InflightBytes } from './inflight-bytes.js';
import { InflationSlots } from './inflation-slots.js';
import type { BodyFormat, Decoded } from './types.js';
import { decompress, normalizeEncoding } from './decompress.js';

/** A request as received: its body as sent, and what it decoded to. */
export interface ReceivedRequest {
  format: BodyFormat;
  /** Content-Encoding, trimmed and in lower case ('' for none). */
  encoding: string;
  body: Buffer;
  /** The records; a body that cannot be decoded at all is one bad part (kept, as a dead letter). */
  decoded: Decoded;
}

/** What the receiver hands requests to; the pipeline implements it. */
export interface IngestTarget {
  /** null when a request may be taken now, else why not (answered 503 so Fluent Bit retries). */
  refuseReason(): string | null;
  /** null when ready for traffic; refusing, or close to it (a spool nearly full), is not ready. */
  notReadyReason(): string | null;
  /** Resolves once the request is durable (spooled); rejects when it could not be taken. */
  ingest(request: ReceivedRequest): Promise<IngestSummary>;
  /** A request was answered 503 (backpressure, or a spool that could not take it): counted for coverage. */
  refused(): void;
}

export interface IngestSummary {
  records: number;
  flows: number;
  events: number;
  skipped: number;
  /** Dead letters counted (every one) and rows written for them (bounded; see limits.maxDeadLetterRows*). */
  deadLettered: number;
  deadLetterRows: number;
  /** Spooled but not yet made into rows (older requests wait, or memory is at its bounds): the counts come later. */
  deferred: boolean;
  /** The same body was spooled before (Fluent Bit resent a chunk whose answer it did not see): not made into rows again. */
  duplicate: boolean;
}

export interface ReceiverOptions {
  auth: AuthSettings;
  limits: BodyLimits & { maxBodyBytes: number; requestTimeoutMs: number; maxInflightRequests: number; maxInflightBytes: number; maxWaitingBytes: number };
  retryAfterSeconds: number;
  jsonDateKey: string;
  logger: FastifyServerOptions['logger'];
  /** Serve /metrics, /healthz and /readyz here too (no `server.metricsPort` of their own). */
  healthRoutes: boolean;
  /** Turns to decode a body (limits.maxInflightRequests and maxInflightBytes), shared with the record queue. */
  decodeTurns: InflightBytes;
}

type FormatLabel = BodyFormat | 'unknown';

/**
 * The HTTP face of hubble-adx: Fluent Bit's `http` output posts here (any path), Prometheus
 * scrapes /metrics, kubelet probes /healthz and /readyz. Status codes follow what Fluent Bit does
 * with them: 2xx done, 429/5xx retried later, any other 4xx dropped for good.
 */
export function buildReceiver(target: IngestTarget, metrics: Metrics, opts: ReceiverOptions): FastifyInstance {
  const app = Fastify({
    logger: opts.logger,
    bodyLimit: opts.limits.maxBodyBytes,
    // A body sent slowly is cut off (408) once the whole request took longer than this, checked
    // every second rather than Node's default 30 s (fastify does not pass that setting on).
    serverFactory: (handler) => {
      const server = createServer({ requestTimeout: opts.limits.requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, opts.limits.requestTimeoutMs) }, handler);
      // What fastify sets on servers it makes itself: longer than the keep-alive of proxies and clients.
      server.keepAliveTimeout = 72_000;
      return server;
    },
    // On shutdown every connection is closed, also one still sending its body.
    forceCloseConnections: true,
    // One log line per Fluent Bit request would cost more than the request on a busy node;
    // outcomes are in the metrics, problems are logged where they are decided.
    logController: new LogController({ disableRequestLogging: true }),
  });
  // auth.tokenFile is read now (a StartupError naming it when unusable) and checked again while running.
  const tokenFile = opts.auth.tokenFile
    ? new TokenFile(opts.auth.tokenFile, opts.auth.tokenFileCheckMs ?? 5000, {
        changed: (count) => {
          app.log.info({ file: opts.auth.tokenFile, tokens: count }, 'auth.tokenFile changed: its tokens are accepted from now on');
          metrics.authBearerTokens.set(credentials?.bearerTokens().length ?? 0);
        },
        refused: (reason) => app.log.warn({ reason }, 'auth.tokenFile not taken: the tokens accepted before stay in force'),
      })
    : null;
  if (tokenFile) app.addHook('onClose', async () => tokenFile.close());
  const credentials = credentialsOf(opts.auth, tokenFile ? () => tokenFile.tokens() : null);
  metrics.authBearerTokens.set(credentials?.bearerTokens().length ?? 0);
  const authCheck = credentials ? makeAuthCheck(credentials) : null;

  // Every body arrives as raw bytes: decoding depends on Content-Type and Content-Encoding together.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const count = (format: FormatLabel, status: number) => metrics.httpRequests.inc({ format, status: String(status) });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const format: FormatLabel = formatOf(req.headers['content-type']) ?? 'unknown';
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      metrics.bodiesRejected.inc({ reason: 'body_too_large' });
      count(format, 413);
      return reply.code(413).send({ error: 'body_too_large', message: `body exceeds limits.maxBodyBytes (${opts.limits.maxBodyBytes})` });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      // What the client sent was wrong (a malformed header, say): its problem, not an operator's,
      // so it is not logged as an error that anyone could flood the log with.
      metrics.bodiesRejected.inc({ reason: 'bad_request' });
      req.log.debug({ code: err.code, detail: err.message }, 'request refused');
      count(format, err.statusCode);
      return reply.code(err.statusCode).send({ error: 'bad_request', message: err.message });
    }
    req.log.error({ err }, 'request failed');
    count(format, 500);
    return reply.code(500).send({ error: 'request_failed', message: 'internal error; see the service log' });
  });

  // Credentials are checked before the body is read: an unauthenticated sender costs no body.
  if (authCheck) {
    app.addHook('onRequest', async (req, reply) => {
      if (req.method !== 'POST') return;
      const why = authCheck(req.headers.authorization);
      if (!why) return;
      metrics.bodiesRejected.inc({ reason: 'unauthorized' });
      count(formatOf(req.headers['content-type']) ?? 'unknown', 401);
      req.log.warn({ reason: why }, 'rejected request: authentication failed');
      return reply.code(401).header('WWW-Authenticate', 'Bearer, Basic').header('Connection', 'close').send({ error: 'unauthorized', message: why });
    });
  }

  const inflight = opts.decodeTurns;
  const inflations = new InflationSlots(opts.limits.maxInflightRequests);

  /** 503 with Retry-After: Fluent Bit keeps the chunk and sends it again soon. */
  const busyReply = (reply: import('fastify').FastifyReply, label: FormatLabel, reason: string) => {
    metrics.backpressure.inc({ reason });
    target.refused();
    count(label, 503);
    return reply
      .code(503)
      .header('Retry-After', String(opts.retryAfterSeconds))
      .send({ error: 'unavailable', message: `not accepting now (${reason}); retry later` });
  };

  const ingestHandler = async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const busy = (label: FormatLabel, reason: string) => busyReply(reply, label, reason);
    const format = formatOf(req.headers['content-type']);
    const label: FormatLabel = format ?? 'unknown';
    const refused = target.refuseReason();
    if (refused) return busy(label, refused);
    if (!format) {
      metrics.bodiesRejected.inc({ reason: 'unsupported_content_type' });
      count(label, 415);
      return reply.code(415).send({
        error: 'unsupported_content_type',
        message: `Content-Type "${req.headers['content-type'] ?? ''}" is not a Fluent Bit http output format (msgpack, json, json_lines, json_stream)`,
      });
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const encoding = normalizeEncoding(req.headers['content-encoding']);
    metrics.requestBytes.inc({ stage: 'wire' }, body.length);
    const slot = await inflations.take();
    const inflated = await decompress(body, encoding, opts.limits.maxDecompressedBytes)
      .catch((err: unknown) => ({ ok: false as const, error: { status: 400 as const, reason: 'undecodable_body', message: `the body cannot be decoded: ${(err as Error).message}` } }))
      .finally(slot);
    // Decoded records take heap: only so many bytes of them at once (the rest wait their turn).
    const turn = inflight.acquire(inflated.ok ? inflated.body.length : body.length);
    if (!turn) return busy(label, 'requests_in_flight');
    const release = await turn;
    try {
      return await handle(req, reply, format, body, encoding, inflated);
    } finally {
      release();
    }
  };

  const handle = async (
    req: import('fastify').FastifyRequest,
    reply: import('fastify').FastifyReply,
    format: BodyFormat,
    body: Buffer,
    encoding: string,
    inflated: Awaited<ReturnType<typeof decompress>>,
  ) => {
    let result: BodyResult;
    try {
      // Decoding depends on the body alone: whatever it throws, the body is at fault, never a 5xx.
      result = inflated.ok ? parseBody(inflated.body, format, opts.limits, opts.jsonDateKey) : inflated;
    } catch (err) {
      result = { ok: false, error: { status: 400, reason: 'undecodable_body', message: `the body cannot be decoded: ${(err as Error).message}` } };
    }
    if (!result.ok && result.error.status !== 400) {
      metrics.bodiesRejected.inc({ reason: result.error.reason });
      count(format, result.error.status);
      req.log.warn({ reason: result.error.reason, detail: result.error.message }, 'rejected request body');
      return reply.code(result.error.status).send({ error: result.error.reason, message: result.error.message });
    }
    if (result.ok) {
      metrics.requestBytes.inc({ stage: 'inflated' }, result.inflatedBytes);
      metrics.recordsReceived.inc({ format }, result.decoded.records.length);
    }
    let summary: IngestSummary;
    try {
      // An undecodable body is kept too (it becomes a dead letter): Fluent Bit drops it on the 400.
      const decoded = result.ok ? result.decoded : { records: [], bad: [{ reason: result.error.reason, message: result.error.message, raw: body.toString('base64') }] };
      summary = await target.ingest({ format, encoding, body, decoded });
    } catch (err) {
      // Not acknowledged, so Fluent Bit keeps the chunk and sends it again.
      req.log.error({ err }, 'could not spool the request');
      metrics.backpressure.inc({ reason: 'spool_error' });
      target.refused();
      count(format, 503);
      return reply.code(503).header('Retry-After', String(opts.retryAfterSeconds)).send({ error: 'unavailable', message: 'could not store the request; retry later' });
    }
    if (!result.ok) {
      metrics.bodiesRejected.inc({ reason: result.error.reason });
      count(format, 400);
      req.log.warn({ reason: result.error.reason, detail: result.error.message }, 'rejected request body');
      return reply.code(400).send({ error: result.error.reason, message: result.error.message });
    }
    if (result.decoded.records.length === 0 && result.decoded.bad.length > 0) {
      // Nothing in the body was a record: retrying cannot help. It is kept in the dead letters.
      metrics.bodiesRejected.inc({ reason: 'no_valid_record' });
      count(format, 400);
      return reply.code(400).send({ error: 'no_valid_record', message: result.decoded.bad[0]!.message, ...summary });
    }
    count(format, 200);
    return reply.code(200).send(summary);
  };

  app.post('/', ingestHandler);
  app.post('/*', ingestHandler);

  if (opts.healthRoutes) addHealthRoutes(app, target, metrics);
  return app;
}

/** /metrics, /healthz and /readyz: on the ingest server, or on a server of their own. */
export function addHealthRoutes(app: FastifyInstance, target: Pick<IngestTarget, 'notReadyReason'>, metrics: Metrics): void {
  app.get('/metrics', async (_req, reply) => {
    reply.header('Content-Type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const refused = target.notReadyReason();
    if (refused) return reply.code(503).send({ status: 'not_ready', reason: refused });
    return { status: 'ready' };
  });
}

/**
 * The health and metrics endpoints on their own port (`server.metricsPort`): Prometheus and kubelet
 * reach them while the ingest port stays bound to loopback (sidecar) or closed by a network policy
 * to everything but Fluent Bit. They never need credentials: they carry no flow data.
 */
export function buildHealthServer(target: Pick<IngestTarget, 'notReadyReason'>, metrics: Metrics, logger: FastifyServerOptions['logger']): FastifyInstance {
  const app = Fastify({ logger, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true });
  addHealthRoutes(app, target, metrics);
  return app;
}
