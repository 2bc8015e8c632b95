import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric hubble-adx exports. Stages receive this object and only increment; labels take
 * values from fixed sets (formats, status codes, reasons, table keys), so cardinality stays bounded.
 */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'hubble_adx_' });
  const p = 'hubble_adx_';
  const metrics = {
    registry,
    httpRequests: new Counter({
      name: `${p}http_requests_total`,
      help: 'Fluent Bit requests by body format and response status.',
      labelNames: ['format', 'status'] as const,
      registers: [registry],
    }),
    requestBytes: new Counter({
      name: `${p}request_bytes_total`,
      help: 'Request body bytes received, as sent (compressed) and after decompression.',
      labelNames: ['stage'] as const,
      registers: [registry],
    }),
    bodiesRejected: new Counter({
      name: `${p}bodies_rejected_total`,
      help: 'Request bodies refused for good (4xx) by reason; Fluent Bit drops these chunks.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    authBearerTokens: new Gauge({
      name: `${p}auth_bearer_tokens`,
      help: 'Bearer tokens accepted now (auth.bearerToken and the tokens of auth.tokenFile): 2 while a rotation has old and new.',
      registers: [registry],
    }),
    backpressure: new Counter({
      name: `${p}backpressure_responses_total`,
      help: 'Requests answered 503 with Retry-After, by reason (spool_full, queue_full, requests_in_flight, spool_error, spool_closed, starting, draining).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    recordsReceived: new Counter({
      name: `${p}records_received_total`,
      help: 'Fluent Bit records decoded from request bodies.',
      labelNames: ['format'] as const,
      registers: [registry],
    }),
    flows: new Counter({
      name: `${p}flows_total`,
      help: 'Hubble flows extracted and normalized into rows.',
      registers: [registry],
    }),
    events: new Counter({
      name: `${p}hubble_events_total`,
      help: 'Non-flow exporter records (lost_events, agent_event, debug_event) by kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    linesSkipped: new Counter({
      name: `${p}lines_skipped_total`,
      help: 'Records that carried no Hubble data, by reason (agent_log, no_log_field, other_json, ...).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    parseErrors: new Counter({
      name: `${p}parse_errors_total`,
      help: 'Records or lines that could not be parsed, by stage and reason.',
      labelNames: ['stage', 'reason'] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: `${p}dead_letters_total`,
      help: 'Records set aside as dead letters (one row each in the dead-letter table, or counted in a summary row past the limits), by stage and reason.',
      labelNames: ['stage', 'reason'] as const,
      registers: [registry],
    }),
    hubbleLostEvents: new Counter({
      name: `${p}hubble_lost_events_total`,
      help: 'Events Hubble reported as lost (lost_events.num_events_lost) by source and node: gaps in the audit log.',
      labelNames: ['source', 'node'] as const,
      registers: [registry],
    }),
    deadLettersSummarized: new Counter({
      name: `${p}dead_letters_summarized_total`,
      help: 'Dead letters beyond limits.maxDeadLetterRowsPerRequest or the per-minute rate: counted in dead_letters_total, written only as part of one summary row per request.',
      registers: [registry],
    }),
    stateEvictions: new Counter({
      name: `${p}state_evictions_total`,
      help: 'Entries given up to keep state that spans requests within its cap, by state (cri_partial_lines, identities).',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    labelValuesCapped: new Counter({
      name: `${p}metric_label_values_capped_total`,
      help: 'Samples counted under the label value `_other` because a label taken from input reached limits.maxMetricLabelValues, by metric.',
      labelNames: ['metric'] as const,
      registers: [registry],
    }),
    criPartialBytes: new Gauge({
      name: `${p}cri_partial_bytes_pending`,
      help: 'Bytes of CRI partial lines waiting for their final piece (bounded by extract.partialMaxTotalBytes).',
      registers: [registry],
    }),
    enrichRows: new Counter({
      name: `${p}enrich_rows_total`,
      help: 'Flows through the enrich stage by outcome: kept, filtered, sampled_out, aggregated (absorbed), and aggregate_rows (rows emitted by aggregation).',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    criPartialsPending: new Gauge({
      name: `${p}cri_partial_lines_pending`,
      help: 'CRI partial lines waiting for their final piece.',
      registers: [registry],
    }),
    overloadAggregating: new Gauge({
      name: `${p}overload_aggregating`,
      help: '1 while overload.mode aggregate-allowed folds allowed flows into aggregate rows under sustained pressure (denied flows are still kept one by one), else 0.',
      registers: [registry],
    }),
    coverageWindows: new Counter({
      name: `${p}coverage_windows_total`,
      help: 'HubbleCoverage rows made (one per coverage window, heartbeats included).',
      registers: [registry],
    }),
    pendingRows: new Gauge({
      name: `${p}pipeline_pending_rows`,
      help: 'Rows buffered in batches or in flight to the sink.',
      registers: [registry],
    }),
    pendingBytes: new Gauge({
      name: `${p}pipeline_pending_bytes`,
      help: 'Bytes of the rows buffered or in flight to the sink, encoded as the sink sends them.',
      registers: [registry],
    }),
    spoolBytes: new Gauge({
      name: `${p}spool_bytes`,
      help: 'Bytes in the spool (write-ahead log) on disk.',
      registers: [registry],
    }),
    spoolLimit: new Gauge({
      name: `${p}spool_limit_bytes`,
      help: 'The configured spool.maxBytes (0 without a spool): for alerts on spool_bytes / spool_limit_bytes.',
      registers: [registry],
    }),
    parkedRequests: new Gauge({
      name: `${p}spool_parked_requests`,
      help: 'Requests in the spool not yet made into rows: taken while the rows in memory were at their bounds (ADX slow or down), or left by an earlier run.',
      registers: [registry],
    }),
    spoolSegments: new Gauge({
      name: `${p}spool_segments`,
      help: 'Spool segment files on disk.',
      registers: [registry],
    }),
    spoolFsync: new Histogram({
      name: `${p}spool_fsync_seconds`,
      help: 'Duration of one spool group commit (write and fdatasync).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    spoolReplayedRows: new Counter({
      name: `${p}spool_replayed_rows_total`,
      help: 'Rows found in the spool at start (undelivered by the previous run) and sent again.',
      registers: [registry],
    }),
    spoolTornRecords: new Counter({
      name: `${p}spool_torn_records_total`,
      help: 'What a start cut from the spool, by reason: torn (a record the process died writing), corrupt (a checksum that does not match: the rest of the segment is not read), stray (written by a process after it lost the spool: deleted unread), fence_unreadable (spool.fence could not be read).',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    rowsWritten: new Counter({
      name: `${p}rows_written_total`,
      help: 'Rows the sink acknowledged, by table.',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    sinkErrors: new Counter({
      name: `${p}sink_errors_total`,
      help: 'Failed sink writes by table (the batch is kept and retried).',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    batchRows: new Histogram({
      name: `${p}batch_rows`,
      help: 'Rows per batch written to the sink.',
      labelNames: ['table'] as const,
      buckets: [1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 25000],
      registers: [registry],
    }),
    eventLag: new Histogram({
      name: `${p}event_lag_seconds`,
      help: 'Time from a row\'s TimeGenerated (event time) to the sink acknowledging it.',
      labelNames: ['table'] as const,
      buckets: [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 120, 300, 900, 3600],
      registers: [registry],
    }),
    oldestPendingAge: new Gauge({
      name: `${p}oldest_pending_row_age_seconds`,
      help: 'Age of the oldest row accepted but not yet acknowledged by the sink (0 when none).',
      registers: [registry],
    }),
    sinkLastSuccess: new Gauge({
      name: `${p}sink_last_success_timestamp_seconds`,
      help: 'Unix time of the last batch the destination acknowledged, by table.',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    sinkDeadLetteredRows: new Counter({
      name: `${p}sink_dead_lettered_rows_total`,
      help: 'Rows the destination refused for good, written to the dead-letter directory, by table and reason.',
      labelNames: ['table', 'reason'] as const,
      registers: [registry],
    }),
    kustoBatches: new Counter({
      name: `${p}kusto_requests_total`,
      help: 'ADX ingestion requests by table, route (streaming, queued) and result (success, retry, split, fallback, dead_letter).',
      labelNames: ['table', 'route', 'result'] as const,
      registers: [registry],
    }),
    kustoRowsSent: new Counter({
      name: `${p}kusto_rows_sent_total`,
      help: 'Rows ADX acknowledged, by table.',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    kustoBytesSent: new Counter({
      name: `${p}kusto_bytes_sent_total`,
      help: 'Bytes on the wire (gzipped) of acknowledged ADX requests, by table and format.',
      labelNames: ['table', 'format'] as const,
      registers: [registry],
    }),
    kustoRequestDuration: new Histogram({
      name: `${p}kusto_request_duration_seconds`,
      help: 'Duration of ADX ingestion requests, by table, route and result.',
      labelNames: ['table', 'route', 'result'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    }),
    kustoRetries: new Counter({
      name: `${p}kusto_retries_total`,
      help: 'ADX requests retried after a transient failure, by table and reason (throttled, server, network, timeout, auth, unknown).',
      labelNames: ['table', 'reason'] as const,
      registers: [registry],
    }),
    kustoThrottled: new Counter({
      name: `${p}kusto_throttled_total`,
      help: 'ADX requests answered 429 (throttled), by table.',
      labelNames: ['table'] as const,
      registers: [registry],
    }),
    kustoFallbacks: new Counter({
      name: `${p}kusto_fallbacks_total`,
      help: 'Batches moved from streaming to queued ingestion (managed mode), by table and reason.',
      labelNames: ['table', 'reason'] as const,
      registers: [registry],
    }),
    deadLetterBytes: new Gauge({
      name: `${p}dead_letter_directory_bytes`,
      help: 'Bytes in the ADX dead-letter directory (sink.kusto.deadLetterDirectory); at sink.kusto.deadLetterMaxBytes refused batches stay pending instead.',
      registers: [registry],
    }),
    deadLetterLimit: new Gauge({
      name: `${p}dead_letter_directory_limit_bytes`,
      help: 'The configured sink.kusto.deadLetterMaxBytes (0 without the ADX sink).',
      registers: [registry],
    }),
    deadLetterBatches: new Gauge({
      name: `${p}dead_letter_directory_batches`,
      help: 'Batches in the ADX dead-letter directory, waiting for `hubble-adx redrive`.',
      registers: [registry],
    }),
    kustoPermanentErrors: new Counter({
      name: `${p}kusto_permanent_errors_total`,
      help: 'Batches ADX refused for good (bad mapping, schema mismatch, streaming disabled): alert on any increase.',
      labelNames: ['table', 'reason'] as const,
      registers: [registry],
    }),
  };
  initialiseKnownSeries(metrics);
  return metrics;
}

const TABLE_LABELS = ['flows', 'events', 'deadLetters', 'identities', 'coverage'] as const;

/**
 * Every series whose label values are known in advance starts at 0, so that `increase(...) > 0`
 * alerts fire on the first error of each kind (a series that appears at 1 has no increase).
 * Labels whose values come from input (lost-event node and source) cannot be listed.
 */
function initialiseKnownSeries(m: Metrics): void {
  for (const table of TABLE_LABELS) {
    for (const reason of ['permanent', 'streaming_disabled', 'too_large']) m.kustoPermanentErrors.inc({ table, reason }, 0);
    for (const reason of ['permanent', 'streaming_disabled', 'too_large']) m.sinkDeadLetteredRows.inc({ table, reason }, 0);
    for (const reason of ['throttled', 'server', 'network', 'timeout', 'auth', 'unknown']) m.kustoRetries.inc({ table, reason }, 0);
    m.sinkErrors.inc({ table }, 0);
    m.rowsWritten.inc({ table }, 0);
  }
  for (const reason of ['spool_full', 'queue_full', 'spool_error', 'spool_closed', 'requests_in_flight', 'starting', 'draining']) m.backpressure.inc({ reason }, 0);
  // A 401 drops Fluent Bit's chunk for good: the first one must be an increase an alert sees.
  m.bodiesRejected.inc({ reason: 'unauthorized' }, 0);
  for (const state of ['cri_partial_lines', 'identities']) m.stateEvictions.inc({ state }, 0);
}

export type Metrics = ReturnType<typeof createMetrics>;
