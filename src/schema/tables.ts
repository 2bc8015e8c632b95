/**
 * The one definition of hubble-adx's output tables. The TypeScript row types, the ADX table
 * commands, the ingestion mappings and the README's schema section are all generated from the
 * constants below; nothing else lists columns by hand.
 *
 * Bump SCHEMA_VERSION when a column is added, renamed or retyped: it is written into every row so
 * that analysts can tell which hubble-adx produced it after a `.create-merge table` migration.
 */

export const SCHEMA_VERSION = 5;

export type KustoType = 'string' | 'int' | 'long' | 'real' | 'bool' | 'datetime' | 'dynamic';

export interface ColumnSpec {
  readonly name: string;
  readonly type: KustoType;
  readonly doc: string;
  /** Paths in the exporter record this column is read from (documentation and the no-loss test). */
  readonly from?: readonly string[];
  /**
   * How a dynamic column travels in Avro: a typed array of strings, an array of policy records, or
   * JSON text for open-ended content (ADX stores it in the dynamic column; see the README).
   */
  readonly avro?: 'strings' | 'policies' | 'json';
}

function endpointColumns<P extends 'Source' | 'Destination'>(side: P, key: 'source' | 'destination') {
  return [
    { name: `${side}Identity`, type: 'long', doc: `Cilium security identity of the ${key}.`, from: [`flow.${key}.identity`] },
    { name: `${side}Namespace`, type: 'string', doc: `Kubernetes namespace of the ${key} pod.`, from: [`flow.${key}.namespace`] },
    { name: `${side}PodName`, type: 'string', doc: `Pod name of the ${key}.`, from: [`flow.${key}.pod_name`] },
    { name: `${side}Workload`, type: 'string', doc: `Owning workload name (first of \`workloads\`).`, from: [`flow.${key}.workloads`] },
    { name: `${side}WorkloadKind`, type: 'string', doc: `Owning workload kind (Deployment, StatefulSet, ...).`, from: [`flow.${key}.workloads`] },
    { name: `${side}ClusterName`, type: 'string', doc: `Cluster of the ${key} endpoint (Cluster Mesh).`, from: [`flow.${key}.cluster_name`] },
    { name: `${side}ServiceName`, type: 'string', doc: `Kubernetes service the ${key} address belongs to.`, from: [`flow.${key}_service.name`] },
    { name: `${side}ServiceNamespace`, type: 'string', doc: `Namespace of that service.`, from: [`flow.${key}_service.namespace`] },
    { name: `${side}Labels`, type: 'dynamic', avro: 'strings', doc: `Endpoint labels as Cilium prints them (\`k8s:app=web\`, \`reserved:world\`). Null unless enrich.endpointLabels is \`rows\` or \`both\`: by default they are in HubbleIdentities, once per identity.`, from: [`flow.${key}.labels`] },
    { name: `${side}Names`, type: 'dynamic', avro: 'strings', doc: `DNS names known for the ${key} IP.`, from: [`flow.${key}_names`] },
  ] as const;
}

const policyArray = (key: string) =>
  ({ type: 'dynamic', avro: 'policies', doc: `Policies in \`${key}\`: array of {Name, Namespace, Kind, Revision, Labels}.`, from: [`flow.${key}`] }) as const;

export const FLOW_COLUMNS = [
  { name: 'TimeGenerated', type: 'datetime', doc: 'When Hubble observed the flow (flow.time; else the exporter record time; else the log line time).', from: ['flow.time', 'time'] },
  { name: 'Uuid', type: 'string', doc: 'Flow UUID from Hubble; the de-duplication key.', from: ['flow.uuid'] },
  { name: 'Cluster', type: 'string', doc: 'Cluster name: the `cluster/` prefix of node_name, else the configured cluster.', from: ['node_name', 'flow.node_name'] },
  { name: 'NodeName', type: 'string', doc: 'Node that observed the flow (node_name without the cluster prefix).', from: ['node_name', 'flow.node_name'] },
  { name: 'Verdict', type: 'string', doc: 'FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED.', from: ['flow.verdict'] },
  { name: 'DropReason', type: 'string', doc: 'Drop reason name (POLICY_DENIED, POLICY_DENY, ...), for drops.', from: ['flow.drop_reason_desc'] },
  { name: 'DropReasonCode', type: 'int', doc: 'Numeric drop reason (133 policy denied, 181 explicit deny, ...).', from: ['flow.drop_reason', 'flow.drop_reason_desc', 'flow.event_type.sub_type'] },
  { name: 'FlowType', type: 'string', doc: 'L3_L4, L7 or SOCK.', from: ['flow.Type'] },
  { name: 'EventType', type: 'string', doc: 'Cilium monitor event: drop, trace, policy-verdict, capture, trace-sock, l7, debug, agent.', from: ['flow.event_type.type'] },
  { name: 'EventSubType', type: 'int', doc: 'Monitor event sub type (trace point or drop code).', from: ['flow.event_type.sub_type'] },
  { name: 'TrafficDirection', type: 'string', doc: 'INGRESS or EGRESS relative to the local endpoint.', from: ['flow.traffic_direction'] },
  { name: 'IsReply', type: 'bool', doc: 'True for reply-direction packets; null when Hubble did not know.', from: ['flow.is_reply', 'flow.reply'] },
  { name: 'TraceObservationPoint', type: 'string', doc: 'Where the packet was seen (TO_ENDPOINT, FROM_NETWORK, ...).', from: ['flow.trace_observation_point'] },
  { name: 'TraceReason', type: 'string', doc: 'Connection tracking state (NEW, ESTABLISHED, REPLY, RELATED, ...).', from: ['flow.trace_reason'] },
  { name: 'PolicyMatchType', type: 'string', doc: 'Policy verdict match: L3-Only, L3-L4, L4-Only, all, L3-Proto, Proto-Only, none.', from: ['flow.policy_match_type'] },
  { name: 'AuthType', type: 'string', doc: 'Mutual authentication type required by policy (SPIRE, ...).', from: ['flow.auth_type'] },
  { name: 'IpVersion', type: 'string', doc: 'IPv4 or IPv6.', from: ['flow.IP.ipVersion'] },
  { name: 'SourceIp', type: 'string', doc: 'Source IP address.', from: ['flow.IP.source'] },
  { name: 'SourceIpXlated', type: 'string', doc: 'Source IP after translation (SNAT/masquerade), when known.', from: ['flow.IP.source_xlated'] },
  { name: 'DestinationIp', type: 'string', doc: 'Destination IP address.', from: ['flow.IP.destination'] },
  { name: 'Encrypted', type: 'bool', doc: 'Packet was encrypted (WireGuard/IPsec).', from: ['flow.IP.encrypted'] },
  { name: 'Protocol', type: 'string', doc: 'TCP, UDP, ICMPv4, ICMPv6, SCTP, VRRP or IGMP.', from: ['flow.l4'] },
  { name: 'SourcePort', type: 'int', doc: 'L4 source port.', from: ['flow.l4.TCP.source_port', 'flow.l4.UDP.source_port', 'flow.l4.SCTP.source_port'] },
  { name: 'DestinationPort', type: 'int', doc: 'L4 destination port.', from: ['flow.l4.TCP.destination_port', 'flow.l4.UDP.destination_port', 'flow.l4.SCTP.destination_port'] },
  { name: 'TcpFlags', type: 'string', doc: 'Set TCP flags, comma-separated in header order (SYN,ACK).', from: ['flow.l4.TCP.flags'] },
  { name: 'IcmpType', type: 'int', doc: 'ICMP type.', from: ['flow.l4.ICMPv4.type', 'flow.l4.ICMPv6.type'] },
  { name: 'IcmpCode', type: 'int', doc: 'ICMP code.', from: ['flow.l4.ICMPv4.code', 'flow.l4.ICMPv6.code'] },
  ...endpointColumns('Source', 'source'),
  ...endpointColumns('Destination', 'destination'),
  { name: 'Interface', type: 'string', doc: 'Network interface the flow was seen on.', from: ['flow.interface.name'] },
  { name: 'ProxyPort', type: 'int', doc: 'Port of the L7 proxy the flow was redirected to.', from: ['flow.proxy_port'] },
  { name: 'L7Type', type: 'string', doc: 'REQUEST, RESPONSE or SAMPLE.', from: ['flow.l7.type'] },
  { name: 'L7LatencyNs', type: 'long', doc: 'L7 response latency in nanoseconds.', from: ['flow.l7.latency_ns'] },
  { name: 'HttpMethod', type: 'string', doc: 'HTTP method.', from: ['flow.l7.http.method'] },
  { name: 'HttpUrl', type: 'string', doc: 'HTTP URL.', from: ['flow.l7.http.url'] },
  { name: 'HttpStatus', type: 'int', doc: 'HTTP status code (responses).', from: ['flow.l7.http.code'] },
  { name: 'HttpProtocol', type: 'string', doc: 'HTTP protocol version.', from: ['flow.l7.http.protocol'] },
  { name: 'DnsQuery', type: 'string', doc: 'DNS query name.', from: ['flow.l7.dns.query'] },
  { name: 'DnsRcode', type: 'int', doc: 'DNS response code (0 NOERROR, 3 NXDOMAIN).', from: ['flow.l7.dns.rcode'] },
  { name: 'DnsIps', type: 'dynamic', avro: 'strings', doc: 'Addresses in the DNS answer.', from: ['flow.l7.dns.ips'] },
  { name: 'DnsQtypes', type: 'dynamic', avro: 'strings', doc: 'DNS question types (A, AAAA, ...).', from: ['flow.l7.dns.qtypes'] },
  { name: 'DnsTtl', type: 'long', doc: 'TTL of the DNS answer in seconds.', from: ['flow.l7.dns.ttl'] },
  { name: 'EgressAllowedBy', ...policyArray('egress_allowed_by') },
  { name: 'IngressAllowedBy', ...policyArray('ingress_allowed_by') },
  { name: 'EgressDeniedBy', ...policyArray('egress_denied_by') },
  { name: 'IngressDeniedBy', ...policyArray('ingress_denied_by') },
  { name: 'PolicyLog', type: 'dynamic', avro: 'strings', doc: 'Policy log values of the policies that matched.', from: ['flow.policy_log'] },
  { name: 'FlowCount', type: 'long', doc: 'Flows this row stands for: 1, the sum of Cilium\'s aggregate counts, or the flows hubble-adx aggregated into it.', from: ['flow.aggregate'] },
  { name: 'SamplingWeight', type: 'long', doc: 'Flows each kept row stands for after 1-in-N sampling (1 when not sampled): estimate counts with sum(FlowCount * SamplingWeight).' },
  { name: 'FirstSeen', type: 'datetime', doc: 'Aggregated rows: time of the first flow in the row (null for a single flow).' },
  { name: 'LastSeen', type: 'datetime', doc: 'Aggregated rows: time of the last flow in the row (null for a single flow).' },
  { name: 'PolicyName', type: 'string', doc: 'The policy that decided the flow: first of the direction\'s *_denied_by for drops, *_allowed_by otherwise; `default-deny` for a policy drop (133) no policy claims.' },
  { name: 'PolicyNamespace', type: 'string', doc: 'Namespace of that policy (empty for cluster-wide policies).' },
  { name: 'PolicyKind', type: 'string', doc: 'Kind of that policy (CiliumNetworkPolicy, NetworkPolicy, CiliumClusterwideNetworkPolicy, ...; `DefaultDeny`).' },
  { name: 'SourceEntity', type: 'string', doc: 'What the source is: pod, host, remote-node, world, kube-apiserver, health, ingress, init, unmanaged, cluster (pod in another cluster).' },
  { name: 'DestinationEntity', type: 'string', doc: 'What the destination is (as SourceEntity).' },
  { name: 'SourceServiceAccount', type: 'string', doc: 'Service account of the source pod (from its labels).' },
  { name: 'DestinationServiceAccount', type: 'string', doc: 'Service account of the destination pod.' },
  { name: 'SourceLabelValues', type: 'dynamic', avro: 'json', doc: 'The configured label keys of the source (pod or namespace labels) and their values, e.g. {"team": "payments"}.' },
  { name: 'DestinationLabelValues', type: 'dynamic', avro: 'json', doc: 'The same for the destination.' },
  { name: 'DestinationFqdns', type: 'dynamic', avro: 'strings', doc: 'DNS names of the destination: destination_names and `fqdn:` labels.' },
  { name: 'SourceCidrGroups', type: 'dynamic', avro: 'strings', doc: 'CiliumCIDRGroups the source address belongs to (`cidrgroup:` labels).' },
  { name: 'DestinationCidrGroups', type: 'dynamic', avro: 'strings', doc: 'CiliumCIDRGroups the destination address belongs to.' },
  { name: 'SourceIpScope', type: 'string', doc: 'private, public, loopback, link-local, cgnat, multicast, unspecified (IPv4 and IPv6).' },
  { name: 'DestinationIpScope', type: 'string', doc: 'The same for the destination address.' },
  { name: 'SourceNetworkName', type: 'string', doc: 'Name of the configured network (enrich.networks) holding the source address, e.g. corp-vpn.' },
  { name: 'DestinationNetworkName', type: 'string', doc: 'The same for the destination address.' },
  { name: 'Region', type: 'string', doc: 'Configured region of the cluster.' },
  { name: 'Environment', type: 'string', doc: 'Configured environment (prod, staging, ...).' },
  { name: 'Summary', type: 'string', doc: 'Hubble\'s one-line summary (deprecated upstream, kept for humans).', from: ['flow.Summary'] },
  { name: 'NodeLabels', type: 'dynamic', avro: 'strings', doc: 'Labels of the observing node.', from: ['flow.node_labels'] },
  { name: 'AdditionalFlowData', type: 'dynamic', avro: 'json', doc: 'Every flow field without a column of its own (ethernet, tunnel, file, trace_context, kafka, http headers, ...), under its original path.' },
  { name: 'AggregatedFlows', type: 'long', doc: 'Aggregate rows hubble-adx made: how many flow records were folded into the row (each is one of HubbleCoverage FlowsKept); null for a row of its own.' },
  { name: 'ReceiverNode', type: 'string', doc: 'Node of the hubble-adx instance that received the record (its NODE_NAME): who attests the row, whatever the record says of itself.' },
  { name: 'RunId', type: 'string', doc: 'Run of that hubble-adx instance (new at each start; see HubbleCoverage).' },
  { name: 'CoverageWindow', type: 'long', doc: 'WindowSequence of the HubbleCoverage row (same ReceiverNode and RunId) that counted this flow: what HubbleReconcile joins on.' },
  { name: 'SchemaVersion', type: 'int', doc: 'Version of the hubble-adx schema that wrote the row.' },
] as const satisfies readonly ColumnSpec[];

export const EVENT_COLUMNS = [
  { name: 'TimeGenerated', type: 'datetime', doc: 'Time of the exporter record.', from: ['time'] },
  { name: 'Cluster', type: 'string', doc: 'Cluster name (node_name prefix, else configured).', from: ['node_name'] },
  { name: 'NodeName', type: 'string', doc: 'Node that emitted the record.', from: ['node_name'] },
  { name: 'EventKind', type: 'string', doc: 'lost_events, agent_event, debug_event or node_status.' },
  { name: 'Type', type: 'string', doc: 'Kind-specific type: lost-event source (HUBBLE_RING_BUFFER, PERF_EVENT_RING_BUFFER, OBSERVER_EVENTS_QUEUE), agent or debug event type.' },
  { name: 'NumEventsLost', type: 'long', doc: 'For lost_events: how many events Hubble lost (an audit gap).' },
  { name: 'Details', type: 'dynamic', avro: 'json', doc: 'The whole event payload.' },
  { name: 'ReceiverNode', type: 'string', doc: 'Node of the hubble-adx instance that received the record (its NODE_NAME): who attests the row, whatever the record says of itself.' },
  { name: 'RunId', type: 'string', doc: 'Run of that hubble-adx instance (new at each start; see HubbleCoverage).' },
  { name: 'SchemaVersion', type: 'int', doc: 'Version of the hubble-adx schema that wrote the row.' },
] as const satisfies readonly ColumnSpec[];

export const DEAD_LETTER_COLUMNS = [
  { name: 'TimeGenerated', type: 'datetime', doc: 'When hubble-adx set the record aside.' },
  { name: 'Stage', type: 'string', doc: 'Pipeline stage that rejected it (receive, extract, normalize).' },
  { name: 'Reason', type: 'string', doc: 'Machine-readable reason (invalid_json, partial_too_large, ...).' },
  { name: 'Message', type: 'string', doc: 'Human-readable detail for the operator.' },
  { name: 'NodeName', type: 'string', doc: 'Node it came from, when known.' },
  { name: 'RawData', type: 'string', doc: 'The raw line or record, truncated to the configured maximum.' },
  { name: 'ReceiverNode', type: 'string', doc: 'Node of the hubble-adx instance that received the record (its NODE_NAME): who attests the row, whatever the record says of itself.' },
  { name: 'RunId', type: 'string', doc: 'Run of that hubble-adx instance (new at each start; see HubbleCoverage).' },
  { name: 'SchemaVersion', type: 'int', doc: 'Version of the hubble-adx schema that wrote the row.' },
] as const satisfies readonly ColumnSpec[];

export const IDENTITY_COLUMNS = [
  { name: 'TimeGenerated', type: 'datetime', doc: 'When this hubble-adx instance saw the identity with these labels (first time, then every enrich.identityRefreshSeconds while flows use it).' },
  { name: 'Cluster', type: 'string', doc: 'Cluster the identity belongs to (the endpoint\'s cluster_name, else the flow\'s cluster).' },
  { name: 'NodeName', type: 'string', doc: 'Node whose flows carried it; node-local identities (CIDR, >= 16777216) are only meaningful with it.' },
  { name: 'Identity', type: 'long', doc: 'Cilium security identity: joins Source/DestinationIdentity of HubbleFlows (on ReceiverNode: an instance writes the identities its own node\'s flows carry).' },
  { name: 'Namespace', type: 'string', doc: 'Namespace of the endpoints with this identity.' },
  { name: 'Labels', type: 'dynamic', avro: 'strings', doc: 'The identity\'s labels as Cilium prints them (`k8s:app=web`, `reserved:world`).' },
  { name: 'ReceiverNode', type: 'string', doc: 'Node of the hubble-adx instance that received the record (its NODE_NAME): who attests the row, whatever the record says of itself.' },
  { name: 'RunId', type: 'string', doc: 'Run of that hubble-adx instance (new at each start; see HubbleCoverage).' },
  { name: 'SchemaVersion', type: 'int', doc: 'Version of the hubble-adx schema that wrote the row.' },
] as const satisfies readonly ColumnSpec[];

export const COVERAGE_COLUMNS = [
  { name: 'TimeGenerated', type: 'datetime', doc: 'When the window closed (WindowEnd).' },
  { name: 'WindowStart', type: 'datetime', doc: 'Start of the window (windows are coverage.windowSeconds long, aligned to the clock).' },
  { name: 'WindowEnd', type: 'datetime', doc: 'End of the window; earlier than WindowStart + windowSeconds only for the last window before a shutdown.' },
  { name: 'Cluster', type: 'string', doc: 'Configured cluster of this hubble-adx instance.' },
  { name: 'NodeName', type: 'string', doc: 'Node this hubble-adx instance runs on (coverage.nodeName: the NODE_NAME environment variable by default).' },
  { name: 'RunId', type: 'string', doc: 'The run this row belongs to: new at each start of the process, so that two processes for one node (or a replay) are told apart.' },
  { name: 'RunKind', type: 'string', doc: '`serve` (the service) or `replay` (`hubble-adx replay`, a backfill: not the node\'s own record).' },
  { name: 'WindowSequence', type: 'long', doc: 'Position of the window in its run: 0, 1, 2... Flow rows name it in CoverageWindow.' },
  { name: 'PreviousRunEnd', type: 'string', doc: 'How the run before this one on the same spool ended: `clean` (it drained and said so), `crash` (killed, OOM, node lost power: no clean stop marker), `none` (no run before, or no spool).' },
  { name: 'WindowEndReason', type: 'string', doc: '`window` (the window ended), `stop` (the run stopped cleanly), `crash` (the run died: the next run closed its last window at the last moment it was known alive, with what it had received).' },
  { name: 'RecordsReceived', type: 'long', doc: 'Fluent Bit records made into rows in the window.' },
  { name: 'FlowsSeen', type: 'long', doc: 'Flow records, and lines that may have been one but could not be read, made into rows in the window. Always FlowsKept + FlowsFiltered + FlowsSampledOut + FlowsDeadLettered.' },
  { name: 'FlowsKept', type: 'long', doc: 'Flows represented in the flows table: one per row, or counted in the FlowCount of an aggregate row.' },
  { name: 'FlowsFiltered', type: 'long', doc: 'Flows left out by filters.allowList / filters.denyList.' },
  { name: 'FlowsSampledOut', type: 'long', doc: 'Allowed flows left out by sampling.allowedOneIn.' },
  { name: 'FlowsDeadLettered', type: 'long', doc: 'Flow records (and unreadable candidate lines, undecodable body parts) set aside in the dead-letter table instead.' },
  { name: 'FlowsAggregated', type: 'long', doc: 'Of FlowsKept, the flows folded into aggregate rows (aggregation, or overload.mode aggregate-allowed).' },
  { name: 'RowsWritten', type: 'long', doc: 'Rows of every table the sink acknowledged in the window (rows it refused for good, kept as dead-letter batches, are not counted).' },
  { name: 'HubbleLostEvents', type: 'long', doc: 'Events Hubble itself reported lost (lost_events records) in the window: a gap before hubble-adx.' },
  { name: 'BackpressureResponses', type: 'long', doc: 'Requests answered 503 in the window (Fluent Bit retried them; sustained, its buffer may drop).' },
  { name: 'OldestPendingSeconds', type: 'real', doc: 'Age of the oldest row not yet delivered when the window closed.' },
  { name: 'OverloadAggregating', type: 'bool', doc: 'Whether overload.mode aggregate-allowed was aggregating allowed flows at any time in the window.' },
  { name: 'UpstreamGapBytes', type: 'long', doc: 'Bytes of Hubble\'s export file Fluent Bit never sent (offsets that did not follow on, found through tail\'s Path_Key and Offset_Key): flows lost before hubble-adx.' },
  { name: 'UpstreamGaps', type: 'dynamic', avro: 'json', doc: 'Where those bytes are missing: [{File, Bytes, Ranges: [[from, to], ...]}] (byte offsets in the read of the file they belong to), at most a few ranges per file.' },
  { name: 'UpstreamReadsStarted', type: 'long', doc: 'Reads of an export file that began at offset 0 again in the window: a new file after a rotation, or a Fluent Bit restart (whose seam the offsets cannot vouch for).' },
  { name: 'ConfigHash', type: 'string', doc: 'Hash of the settings that decide which flows are kept (filters, sampling, aggregation, overload, limits, extract): a change marks a change of what is recorded.' },
  { name: 'Version', type: 'string', doc: 'hubble-adx version that wrote the row.' },
  { name: 'SchemaVersion', type: 'int', doc: 'Version of the hubble-adx schema that wrote the row.' },
] as const satisfies readonly ColumnSpec[];

export const TABLES = {
  flows: { defaultName: 'HubbleFlows', columns: FLOW_COLUMNS },
  events: { defaultName: 'HubbleEvents', columns: EVENT_COLUMNS },
  deadLetters: { defaultName: 'HubbleDeadLetters', columns: DEAD_LETTER_COLUMNS },
  identities: { defaultName: 'HubbleIdentities', columns: IDENTITY_COLUMNS },
  coverage: { defaultName: 'HubbleCoverage', columns: COVERAGE_COLUMNS },
} as const;

export type TableKey = keyof typeof TABLES;

/** Every table, in a fixed order (the spool stores a table as its index here: append only). */
export const TABLE_KEYS: readonly TableKey[] = ['flows', 'events', 'deadLetters', 'identities', 'coverage'];

interface TsTypeOf {
  string: string;
  int: number;
  long: number;
  real: number;
  bool: boolean;
  // ISO 8601 / RFC 3339 text, nanoseconds kept as Hubble wrote them.
  datetime: string;
  dynamic: unknown;
}

type RowOf<C extends readonly ColumnSpec[]> = {
  -readonly [K in C[number] as K['name']]: TsTypeOf[K['type']] | null;
};

export type FlowRow = RowOf<typeof FLOW_COLUMNS>;
export type EventRow = RowOf<typeof EVENT_COLUMNS>;
export type DeadLetterRow = RowOf<typeof DEAD_LETTER_COLUMNS>;
export type IdentityRow = RowOf<typeof IDENTITY_COLUMNS>;
export type CoverageRow = RowOf<typeof COVERAGE_COLUMNS>;

export interface RowOfTable {
  flows: FlowRow;
  events: EventRow;
  deadLetters: DeadLetterRow;
  identities: IdentityRow;
  coverage: CoverageRow;
}
