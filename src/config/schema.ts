import { z } from 'zod';
import { upstreamGapsOptionsSchema } from '../coverage/upstream-gaps.js';

/**
 * Every configuration key, its default and its documentation. The README's configuration reference
 * is generated from this schema (see configReference), so a key documented there always exists.
 */

const MiB = 1024 * 1024;

// A section may be left out entirely: its keys then take their defaults.
const section = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape).prefault({} as never);

const strings = z.array(z.string().min(1));
const workloadRef = z.strictObject({ name: z.string().optional(), kind: z.string().optional() });

/** Hubble's FlowFilter, with the field names the Hubble exporter's allowList/denyList use. */
const flowFilter = z.strictObject({
  uuid: strings.optional(),
  source_ip: strings.optional(),
  source_pod: strings.optional(),
  source_fqdn: strings.optional(),
  source_label: strings.optional(),
  source_service: strings.optional(),
  source_workload: z.array(workloadRef).optional(),
  destination_ip: strings.optional(),
  destination_pod: strings.optional(),
  destination_fqdn: strings.optional(),
  destination_label: strings.optional(),
  destination_service: strings.optional(),
  destination_workload: z.array(workloadRef).optional(),
  traffic_direction: z.array(z.enum(['INGRESS', 'EGRESS', 'ingress', 'egress'])).optional(),
  verdict: strings.optional(),
  drop_reason_desc: strings.optional(),
  event_type: z.array(z.strictObject({ type: z.union([z.number().int(), z.string()]), sub_type: z.number().int().optional() })).optional(),
  protocol: strings.optional(),
  source_port: z.array(z.union([z.string(), z.number().int()]).transform(String)).optional(),
  destination_port: z.array(z.union([z.string(), z.number().int()]).transform(String)).optional(),
  reply: z.array(z.boolean()).optional(),
  node_name: strings.optional(),
  ip_version: strings.optional(),
  http_status: z.array(z.union([z.string(), z.number().int()]).transform(String)).optional(),
  http_method: strings.optional(),
  dns_query: strings.optional(),
});

const AGGREGATION_KEY_DEFAULT = [
  'Verdict', 'TrafficDirection', 'SourceNamespace', 'SourceWorkload', 'SourceIp', 'DestinationNamespace', 'DestinationWorkload',
  'DestinationIp', 'DestinationPort', 'Protocol', 'PolicyName',
];

export const configSchema = z.strictObject({
  cluster: z.string().default('default').describe('Cluster name for rows whose node_name has no `cluster/` prefix.'),
  server: section({
    host: z.string().default('127.0.0.1').describe('Bind address. Loopback by default: Fluent Bit runs on the same node.'),
    port: z.number().int().min(0).max(65535).default(9880).describe('Listen port for Fluent Bit (and for /metrics, /healthz and /readyz unless metricsPort is set).'),
    metricsPort: z.number().int().min(0).max(65535).default(0).describe('A port of their own for /metrics, /healthz and /readyz (0: served on `port`). The manifests use 9881, so that the ingest port can be bound to loopback (sidecar) or closed by a network policy to all but Fluent Bit.'),
    metricsHost: z.string().default('0.0.0.0').describe('Bind address of metricsPort: reachable by Prometheus and kubelet probes.'),
    jsonDateKey: z.string().min(1).default('date').describe('Fluent Bit `json_date_key` for `Format json`/json_lines/json_stream bodies (event time fallback).'),
    retryAfterSeconds: z.number().int().min(1).max(3600).default(5).describe('Retry-After sent with 503 when hubble-adx cannot take more.'),
  }),
  auth: section({
    bearerToken: z.string().min(16).optional().describe('Require `Authorization: Bearer <token>` (Fluent Bit `Header Authorization Bearer ...`). Prefer the env var; for tokens that rotate, `tokenFile`. Both may be set: either token passes.'),
    tokenFile: z.string().min(1).optional().describe('A file of bearer tokens, one per line (blank lines and `#` comments left out), any of which passes: a mounted Secret. Read at start (unreadable or empty: hubble-adx does not start) and again every `tokenFileCheckMs`, so that old and new tokens are both accepted through a rotation without a restart; a file that becomes unreadable or empty keeps the tokens taken before (logged).'),
    tokenFileCheckMs: z.number().int().min(100).max(600_000).default(5000).describe('How often `tokenFile` is read again. A Secret volume swaps its files through a symlink, which a file watch misses, so the file is polled; kubelet itself takes up to about a minute to bring a changed Secret to the pod.'),
    basicUser: z.string().min(1).optional().describe('Require HTTP basic auth with this user (Fluent Bit `http_User`).'),
    basicPassword: z.string().min(1).optional().describe('Password for basic auth (Fluent Bit `http_Passwd`).'),
    allowUnauthenticated: z.boolean().default(false).describe('Start without any credential on a `server.host` that is not loopback. Off: hubble-adx refuses to start there without `tokenFile`, `bearerToken` or basic credentials, since any pod that reaches the port could write rows into the audit tables.'),
  }),
  limits: section({
    maxBodyBytes: z.number().int().min(1024).default(8 * MiB).describe('Largest request body accepted as sent (compressed); larger gets 413. Fluent Bit sends one chunk (about 2 MB of msgpack, up to about 3 MB as JSON) per request.'),
    maxDecompressedBytes: z.number().int().min(1024).default(8 * MiB).describe('Largest body after decompression, checked against what gzip, zstd and snappy headers declare and against the output as it is made; more gets 413. Decoded values take about 7 times their text (small strings and objects) and up to about 12 times for objects whose keys no other object has (a V8 hidden class each): 8 MiB at that worst is about 95 MB of the image\'s 128 MB heap, which is why decoding takes turns (limits.maxInflightBytes); 3 times the largest Fluent Bit chunk.'),
    maxRecordBytes: z.number().int().min(1024).default(2 * MiB).describe('Largest single record (a json_lines line, a JSON object, a msgpack event); a larger one is dead-lettered undecoded, the rest of its body goes on.'),
    maxValuesPerRequest: z.number().int().min(1000).default(400_000).describe('Most objects and arrays (JSON) or values (msgpack) one body may declare, counted before decoding: what bounds its memory whatever its shape (a real Fluent Bit chunk declares tens of thousands). More gets 413.'),
    maxInflightRequests: z.number().int().min(1).max(64).default(2).describe('Requests decoded, spooled and made into rows at once (Fluent Bit\'s http output sends with 2 workers); one more waits for its turn. With limits.maxValuesPerRequest it bounds the heap decoded requests take, whatever arrives at once; it is also how many bodies are decompressed at once.'),
    maxInflightBytes: z.number().int().min(1024).default(8 * MiB).describe('The same bound in bytes of request bodies, inflated (one larger body goes alone), shared by the receiver and the record queue when it reads a parked or replayed request back from the spool.'),
    maxWaitingBytes: z.number().int().min(1024).default(32 * MiB).describe('Bytes of inflated bodies waiting for that turn; past it a request is answered 503 (Fluent Bit retries).'),
    maxRecordsPerRequest: z.number().int().min(1).default(50_000).describe('Most records (and undecodable parts) in one request, counted while decoding; decoding stops past it and the request gets 413.'),
    requestTimeoutMs: z.number().int().min(1000).default(30_000).describe('Longest time to receive a whole request (headers and body); a slower sender is cut off with 408.'),
    maxLineBytes: z.number().int().min(1024).default(1 * MiB).describe('Longest cilium-agent log line parsed as an exporter record (Hubble writes a few KB); a longer one is dead-lettered unparsed.'),
    maxJsonDepth: z.number().int().min(8).max(1000).default(64).describe('Deepest nesting of a value kept in a row (Hubble flows nest about 6 deep); a record nested deeper is dead-lettered, so that no row can fail to encode.'),
    maxDeadLetterRowsPerRequest: z.number().int().min(1).default(100).describe('Dead-letter rows written for one request; past it, one more row summarizes the rest (counts by reason, the first raw text). Metrics count every one.'),
    maxDeadLetterRowsPerMinute: z.number().int().min(1).default(6000).describe('Dead-letter rows this instance writes per minute (a token bucket); past it each request writes only its summary row.'),
    maxMetricLabelValues: z.number().int().min(1).default(64).describe('Distinct values a metric label taken from input (node name, lost-event source) may have; later values are counted under `_other`.'),
  }),
  extract: section({
    logKeys: z.array(z.string().min(1)).min(1).default(['log', 'message']).describe('Record keys holding the container log line, tried in order (`log` for the cri multiline parser, `message` for the cri regex parser).'),
    mergeLogKey: z.string().optional().describe('Fluent Bit kubernetes filter `Merge_Log_Key`, when merged maps are nested under it.'),
    partialMaxBytes: z.number().int().min(16 * 1024).default(1 * MiB).describe('Largest line reassembled from CRI partial pieces; beyond it the pieces are dead-lettered.'),
    partialMaxAgeMs: z.number().int().min(100).default(10_000).describe('A partial line with no final piece for this long is dead-lettered (the time no process ran, between a crash and the restart that replays its pieces, does not count).'),
    partialMaxLines: z.number().int().min(1).default(1024).describe('Unfinished CRI partial lines held at once over all streams; past it the oldest is dead-lettered.'),
    partialMaxTotalBytes: z.number().int().min(64 * 1024).default(16 * MiB).describe('Bytes of unfinished CRI partial lines held at once over all streams; past it the oldest are dead-lettered.'),
    maxDeadLetterRawBytes: z.number().int().min(256).default(64 * 1024).describe('Raw text kept in a dead-letter row (the rest is cut, and the row says so).'),
  }),
  batch: section({
    maxRows: z.number().int().min(1).default(2000).describe('Rows per batch handed to the sink. 2,000 flows of JSON lines are about one streaming request (sink.kusto.maxRequestBytes), so bigger batches only split; in the bench they cost ~20% more CPU per flow (bigger strings, rows held longer).'),
    maxAgeMs: z.number().int().min(10).default(1000).describe('Longest a row waits in a partial batch before it is flushed.'),
    maxInFlight: z.number().int().min(1).max(32).default(4).describe('Batches of one table written to the sink at once (each acknowledged on its own).'),
    maxPendingRows: z.number().int().min(1).default(10_000).describe('Rows in memory (in batches, being written, or waiting for the checkpoint that counts them) at which requests are parked in the spool, or, without a spool, answered 503 `queue_full` (high watermark).'),
    maxPendingBytes: z.number().int().min(1024 * 1024).default(12 * MiB).describe('The same bound in bytes (of the pending rows, encoded as the sink sends them): what keeps memory bounded. Keep it under a fifth of the heap (128 MB in the image).'),
    resumeBelow: z.number().min(0.1).max(1).default(0.8).describe('After a 503, requests are taken again once pending rows, bytes and spool are below this fraction of their bound (low watermark).'),
  }),
  coverage: section({
    windowSeconds: z.number().int().min(1).max(3600).default(60).describe('Length of a HubbleCoverage window: one row per node per window, also when no flow arrived (a heartbeat: silence then means the pipeline is down).'),
    nodeName: z.string().min(1).optional().describe('Node named in HubbleCoverage rows; by default the NODE_NAME environment variable (the manifests set it from spec.nodeName), else the host name.'),
    // The export files' byte offsets (Fluent Bit tail's Path_Key log_file, Offset_Key log_offset): the tracker checks its own settings.
    upstream: upstreamGapsOptionsSchema.prefault({} as never),
  }),
  overload: section({
    mode: z.enum(['backpressure', 'aggregate-allowed']).default('backpressure').describe('What sustained overload does: `backpressure` parks requests in the spool and answers 503 once it is full (Fluent Bit buffers); `aggregate-allowed` folds allowed (FORWARDED) flows into one row per key per aggregation window, with FlowCount, while denied and dropped flows are always kept one by one, until the pressure clears.'),
    afterSeconds: z.number().int().min(0).default(30).describe('How long the rows in memory (or parked requests) must stay at their bound before aggregate-allowed starts aggregating.'),
  }),
  retry: section({
    minDelayMs: z.number().int().min(10).default(500).describe('First wait before a failed write is tried again (a transient ADX failure, a local file that cannot be written); doubles each attempt, with jitter. The one retry policy of every sink.'),
    maxDelayMs: z.number().int().min(10).default(30_000).describe('Longest wait between two attempts.'),
  }),
  spool: section({
    enabled: z.boolean().default(true).describe('Write-ahead log on disk: a request is acknowledged only once it is flushed there (as received), and what was not yet delivered is made into rows and sent again after a restart or crash. Off: memory only, at-most-once on a crash.'),
    directory: z.string().default('./spool').describe('Spool directory (an emptyDir or hostPath volume in Kubernetes).'),
    maxBytes: z.number().int().min(1024 * 1024).default(2 * 1024 * MiB).describe('Largest spool; when full the receiver answers 503 (nothing is ever deleted to make room).'),
    segmentBytes: z.number().int().min(64 * 1024).max(1024 * MiB).default(16 * MiB).describe('Size at which a spool segment is closed; a closed segment is deleted once the rows of all its requests are delivered.'),
    checkpointIntervalMs: z.number().int().min(20).max(60_000).default(250).describe('Rows are delivered once the checkpoint that counts them is on disk (so that a crash never loses a count, and makes again only rows not yet delivered); a checkpoint follows counted rows within this long. It adds at most this to the lag.'),
    lockStaleMs: z.number().int().min(2000).max(60_000).default(5000).describe('The spool lock is refreshed every half of this; a lock not refreshed for this long (its process died or froze) is taken over by the next start, which waits that long at most.'),
    resendWindowSeconds: z.number().int().min(0).default(900).describe('How long after its rows are delivered a request body is still recognised when Fluent Bit sends it again (a chunk whose answer it did not see, after a crash): answered 200, not made into rows twice. While in the spool it is always recognised.'),
    resendMaxEntries: z.number().int().min(1000).default(200_000).describe('Most delivered bodies remembered for that (a digest each, about 100 bytes); past it the oldest are forgotten.'),
  }),
  shutdown: section({
    graceMs: z.number().int().min(0).default(25_000).describe('On SIGTERM: time to deliver what is pending before exiting 0 (keep under terminationGracePeriodSeconds); the rest stays in the spool.'),
  }),
  sink: section({
    type: z.enum(['local', 'kusto']).default('local').describe('Where rows go. `local`: JSON-lines files (the embedded default, no Azure needed); `kusto`: Azure Data Explorer.'),
    local: section({
      directory: z.string().default('./data').describe('Directory for the local sink files.'),
      maxFileBytes: z.number().int().min(4096).default(64 * MiB).describe('Rotate a table file once it reaches this size.'),
      maxFiles: z.number().int().min(0).default(0).describe('Most rotated files kept per table; 0 keeps all.'),
    }),
    kusto: section({
      clusterUrl: z.string().url().optional().describe('ADX cluster (engine) URL, e.g. `https://mycluster.westeurope.kusto.windows.net`. Required for `sink.type: kusto`.'),
      ingestUrl: z.string().url().optional().describe('Data management (`ingest-`) URL for queued ingestion; derived from clusterUrl when unset.'),
      database: z.string().min(1).optional().describe('ADX database. Required for `sink.type: kusto`.'),
      mode: z.enum(['streaming', 'queued', 'managed']).default('streaming').describe('`streaming`: seconds of lag; `queued`: via blob and queue (minutes); `managed`: streaming, falling back to queued for a batch streaming cannot take.'),
      format: z.enum(['multijson', 'avro']).default('multijson').describe('Wire format of batches: JSON lines (the default) or Avro object container files (in `npm run bench` a quarter less CPU and bytes per flow; see docs/azure-data-explorer.md on its dynamic columns).'),
      maxRequestBytes: z.number().int().min(64 * 1024).max(4 * 1000 * 1000).default(3_500_000).describe('Largest uncompressed batch per streaming request; larger batches are split (ADX limit: 4 MB).'),
      gzipLevel: z.number().int().min(1).max(9).default(3).describe('gzip level of requests to ADX (off the event loop, but on the same core). Levels 1-3 are zlib\'s fast strategy, 4-9 its slow one: per flow of 3.4 KB, multijson level 3 costs 5.7 us for 167 bytes on the wire, level 6 13.7 us for 127 bytes; Avro 3.6 us / 116 bytes vs 8.1 us / 98 bytes (docs/benchmarks.md).'),
      maxConcurrentRequests: z.number().int().min(1).max(32).default(4).describe('Requests of one batch in flight at once (a batch over maxRequestBytes is sent as several).'),
      requestTimeoutMs: z.number().int().min(1000).default(30_000).describe('Longest wait for one ingestion request before it is retried (an abandoned request may still land: its rows can then arrive twice, which the de-duplication view removes).'),
      retryMaxAttempts: z.number().int().min(1).default(10).describe('Managed mode: streaming attempts of a transiently failing batch before it falls back to queued ingestion. A transient failure is otherwise retried for as long as it lasts (the batch stays in the spool); only what ADX refuses for good is dead-lettered.'),
      retryMaxAgeMs: z.number().int().min(1000).default(600_000).describe('Managed mode: how long streaming is retried before the batch falls back to queued ingestion.'),
      deadLetterDirectory: z.string().default('./dead-letter').describe('Where batches ADX refused for good (a mapping or schema error, `@permanent: true`) are written, gzipped, with the reason; `hubble-adx redrive` sends them again.'),
      deadLetterMaxBytes: z.number().int().min(1024 * 1024).default(256 * MiB).describe('Largest dead-letter directory. At it, a refused batch is not written: it stays pending in the spool (backpressure follows), and HubbleAdxDeadLetterDirectoryFull fires. Nothing is deleted to make room.'),
      auth: z.enum(['workload-identity', 'managed-identity', 'client-secret', 'azure-cli', 'default', 'none']).default('workload-identity').describe('Credential: workload identity (AKS; AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE), managed identity, client secret (AZURE_CLIENT_SECRET), Azure CLI (laptop), `default` (environment, workload identity, managed identity only), or `none` (a local test server).'),
      clientId: z.string().optional().describe('Application (client) ID: for a user-assigned managed identity, or to override AZURE_CLIENT_ID.'),
      tenantId: z.string().optional().describe('Tenant ID, to override AZURE_TENANT_ID.'),
    }),
    tables: section({
      flows: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('HubbleFlows').describe('Table (and file prefix) for flows.'),
      events: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('HubbleEvents').describe('Table for lost/agent/debug events.'),
      deadLetters: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('HubbleDeadLetters').describe('Table for records set aside with a reason.'),
      identities: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('HubbleIdentities').describe('Table for the labels of each security identity (see enrich.endpointLabels).'),
      coverage: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('HubbleCoverage').describe('Table for the completeness record: one row per node per coverage window.'),
    }),
  }),
  enrich: section({
    decisivePolicy: z.boolean().default(true).describe('PolicyName/Namespace/Kind: the policy that decided each flow (default-deny for unattributed policy drops).'),
    entities: z.boolean().default(true).describe('SourceEntity/DestinationEntity from reserved identities, DestinationFqdns, Source/DestinationCidrGroups.'),
    workloads: z.boolean().default(true).describe('Workload from the pod name when Hubble gives none; service accounts; the label values of `labelKeys`.'),
    labelKeys: z.array(z.string().min(1)).default(['app.kubernetes.io/name', 'app', 'team']).describe('Pod (or namespace) label keys copied into Source/DestinationLabelValues.'),
    endpointLabels: z.enum(['identities', 'rows', 'both']).default('identities').describe('Where endpoint labels go: `identities` writes each identity\'s labels to HubbleIdentities once (and every identityRefreshSeconds) and leaves Source/DestinationLabels null, which takes most of the bytes out of every flow row; `rows` keeps them on every flow row only; `both` does both.'),
    identityRefreshSeconds: z.number().int().min(60).default(3600).describe('How often an identity still in use is written to HubbleIdentities again, so that a join over a recent window finds it.'),
    identityCacheMaxEntries: z.number().int().min(16).default(16_384).describe('Identities remembered (per cluster and node) to write each one once; past it the least recently written are forgotten (and written again when next seen).'),
    identityCacheMaxBytes: z.number().int().min(64 * 1024).default(8 * MiB).describe('The same bound in bytes of remembered labels.'),
    ipScope: z.boolean().default(true).describe('Source/DestinationIpScope: private, public, loopback, link-local, cgnat, multicast.'),
    networks: z.array(z.strictObject({ name: z.string().min(1), cidrs: z.array(z.string().min(1)).min(1) })).default([]).describe('Named networks (`[{name: corp-vpn, cidrs: [10.8.0.0/16]}]`) for Source/DestinationNetworkName.'),
    region: z.string().optional().describe('Region column (e.g. from the downward API or the node label through an env var).'),
    environment: z.string().optional().describe('Environment column (prod, staging, ...).'),
    pseudonymize: section({
      enabled: z.boolean().default(false).describe('Replace public IPs and URL query strings with keyed HMAC-SHA256 pseudonyms (joinable, not reversible without the key).'),
      key: z.string().min(32).optional().describe('The HMAC key (32+ characters): set HUBBLE_ADX_ENRICH__PSEUDONYMIZE__KEY from a Secret.'),
      publicIps: z.boolean().default(true).describe('Pseudonymize public Source/DestinationIp and SourceIpXlated.'),
      urlQueries: z.boolean().default(true).describe('Pseudonymize the query string of HttpUrl.'),
    }),
  }),
  filters: section({
    allowList: z.array(flowFilter).default([]).describe('Keep only flows matching any of these Hubble FlowFilters (empty: keep all).'),
    denyList: z.array(flowFilter).default([]).describe('Drop flows matching any of these Hubble FlowFilters.'),
  }),
  sampling: section({
    allowedOneIn: z.number().int().min(1).default(1).describe('Keep 1 in N allowed connections (by 5-tuple hash; denied flows are never sampled); rows carry SamplingWeight N.'),
  }),
  aggregation: section({
    enabled: z.boolean().default(false).describe('Collapse flows of `verdicts` over a window into one row per `key` (FlowCount, FirstSeen, LastSeen, AggregatedFlows). The rows are taken when the window ends (and when a coverage window closes); until they are on disk the requests their flows came from stay in the spool, so a crash loses none and counts none twice.'),
    windowSeconds: z.number().int().min(1).max(3600).default(30).describe('Aggregation window.'),
    verdicts: z.array(z.string()).default(['FORWARDED']).describe('Verdicts aggregated; denied flows are kept one by one unless listed.'),
    key: z.array(z.string()).default(AGGREGATION_KEY_DEFAULT).describe('Columns that make one aggregated row.'),
    keepIps: z.boolean().default(true).describe('Keep Source/DestinationIp in the key and rows; false drops them for fewer rows.'),
    maxKeys: z.number().int().min(1).default(50_000).describe('Aggregate rows held at once. Before a slice of records (2,000 at most) could open more, the rows held are taken and written first: which flows are folded never depends on how full the aggregator was.'),
  }),
  log: section({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level (structured JSON logs via pino).'),
  }),
});

export type Config = z.infer<typeof configSchema>;
