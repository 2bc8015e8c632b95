import { EVENT_TYPE } from '../normalize/enums.js';
import type { FunctionDefinition, TableNames } from './kql-types.js';

/**
 * `ContainerNetworkLogs`: HubbleFlows with the column names and types of the Log Analytics table
 * that AKS's Advanced Container Networking Services fills (container network logs), so that
 * queries and workbooks written for that table run unchanged against ADX. The dynamic columns
 * hold the Hubble flow's own JSON shapes (`IP.source`, `Layer4.TCP.destination_port`, ...), as
 * ACNS writes them. docs/azure-data-explorer.md says what differs.
 */
export function acnsFunctionDefinitions(n: TableNames): FunctionDefinition[] {
  // Hubble's numeric event types, from the names HubbleFlows keeps.
  const eventTypeNumber = `case(${[...EVENT_TYPE].map(([num, name]) => `EventType == "${name}", ${num}`).join(', ')}, toint(EventType))`;
  // A row stands for FlowCount flows, times its sampling weight (allowed flows may be sampled).
  const flows = 'toint(FlowCount * coalesce(SamplingWeight, 1))';
  const workloads = (side: string) =>
    `iff(isempty(${side}Workload), dynamic([]), pack_array(bag_pack("name", ${side}Workload, "kind", ${side}WorkloadKind)))`;
  const service = (side: string) => `iff(isempty(${side}ServiceName), dynamic(null), bag_pack("name", ${side}ServiceName, "namespace", ${side}ServiceNamespace))`;
  const body = `
    ${n.flows}
    | extend TcpFlagBag = iff(isempty(TcpFlags), dynamic(null), parse_json(strcat('{"', replace_string(TcpFlags, ',', '":true,"'), '":true}')))
    | project
        AdditionalFlowData,
        _BilledSize = real(null),
        DestinationClusterName,
        DestinationIdentity = toint(DestinationIdentity),
        DestinationNamespace,
        DestinationPodName,
        DestinationWorkloads = ${workloads('Destination')},
        DropReason,
        EgressFlowCount = iff(IsReply == true, ${flows}, int(0)),
        EventType = iff(isempty(EventType), dynamic(null), bag_pack("type", ${eventTypeNumber}, "sub_type", EventSubType)),
        FlowType,
        IngressFlowCount = iff(IsReply == false, ${flows}, int(0)),
        IP = bag_pack("source", SourceIp, "source_xlated", SourceIpXlated, "destination", DestinationIp, "ipVersion", IpVersion, "encrypted", Encrypted),
        _IsBillable = "false",
        Layer4 = case(
            isempty(Protocol), dynamic(null),
            Protocol == "TCP", bag_pack("TCP", bag_pack("source_port", SourcePort, "destination_port", DestinationPort, "flags", TcpFlagBag)),
            Protocol in ("ICMPv4", "ICMPv6"), bag_pack(Protocol, bag_pack("type", IcmpType, "code", IcmpCode)),
            bag_pack(Protocol, bag_pack("source_port", SourcePort, "destination_port", DestinationPort))),
        Layer7 = iff(isempty(L7Type), dynamic(null), bag_pack(
            "type", L7Type,
            "latency_ns", L7LatencyNs,
            "http", iff(isempty(HttpMethod) and isnull(HttpStatus), dynamic(null), bag_pack("code", HttpStatus, "method", HttpMethod, "url", HttpUrl, "protocol", HttpProtocol)),
            "dns", iff(isempty(DnsQuery), dynamic(null), bag_pack("query", DnsQuery, "ips", DnsIps, "ttl", DnsTtl, "rcode", DnsRcode, "qtypes", DnsQtypes)))),
        NodeName,
        Policies = bag_pack("egress_allowed_by", EgressAllowedBy, "ingress_allowed_by", IngressAllowedBy, "egress_denied_by", EgressDeniedBy, "ingress_denied_by", IngressDeniedBy),
        Reply = IsReply,
        _ResourceId = Cluster,
        Service = bag_pack("source_service", ${service('Source')}, "destination_service", ${service('Destination')}),
        SourceClusterName,
        SourceIdentity = toint(SourceIdentity),
        SourceNamespace,
        SourcePodName,
        SourceSystem = "hubble-adx",
        SourceWorkloads = ${workloads('Source')},
        _SubscriptionId = "",
        TenantId = "",
        TimeGenerated,
        TraceObservationPoint,
        TrafficDirection,
        Type = "ContainerNetworkLogs",
        UnknownDirectionFlowCount = iff(isnull(IsReply), ${flows}, int(0)),
        UUID = Uuid,
        Verdict`;
  return [
    {
      name: 'ContainerNetworkLogs',
      params: '',
      doc: 'HubbleFlows with the columns of the ContainerNetworkLogs table of AKS container network logs (ACNS), for queries written for it',
      body: body.trim(),
    },
  ];
}
