import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { kqlFiles } from '../../src/schema/index.js';
import { kqlCommands, kqlErrors, kqlResultColumns } from '../helpers/kusto-language.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const KUSTO_DIR = join(ROOT, 'deploy/kusto');

describe('the KQL hubble-adx ships', () => {
  it('the language service catches a misspelled column (the check can fail)', () => {
    expect(kqlErrors('HubbleFlows | where Verdik == "DROPPED"')[0]).toMatch(/^KS142/);
    expect(kqlErrors('HubbleFlows | where Verdict == "DROPPED" | take 1')).toEqual([]);
  });

  it('deploy/kusto is what the schema definition generates (run `npm run docs` after a schema change)', () => {
    const onDisk = Object.fromEntries(readdirSync(KUSTO_DIR).filter((f) => f.endsWith('.kql')).map((f) => [f, readFileSync(join(KUSTO_DIR, f), 'utf8')]));
    expect(onDisk).toEqual(kqlFiles());
  });

  for (const [file, text] of Object.entries(kqlFiles())) {
    it(`${file}: every command passes the Kusto language service against the table schema`, () => {
      const commands = kqlCommands(text);
      expect(commands.length).toBeGreaterThan(0);
      const errors = commands.flatMap((c) => kqlErrors(c).map((e) => `${c.split('\n')[0]!.slice(0, 80)} → ${e}`));
      expect(errors).toEqual([]);
    });
  }

  it('every query in the docs passes the language service', () => {
    const pages = ['README.md', ...readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
    const queries = pages.flatMap((p) => [...readFileSync(join(ROOT, p), 'utf8').matchAll(/```kusto\n([\s\S]*?)```/g)].map((m) => m[1]!.trim()));
    expect(queries.length).toBeGreaterThanOrEqual(5);
    const errors = queries.flatMap((q) => kqlErrors(q).map((e) => `${q.split('\n')[0]} → ${e}`));
    expect(errors).toEqual([]);
  });
});

describe('ContainerNetworkLogs: the ACNS table over HubbleFlows', () => {
  const fixture = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/acns/containernetworklogs-table.json'), 'utf8')) as { columns: { name: string; type: string }[] };

  it('returns exactly the columns and types of the ContainerNetworkLogs table of Log Analytics', () => {
    expect(fixture.columns.length).toBeGreaterThan(30);
    expect(kqlResultColumns('ContainerNetworkLogs')).toEqual(fixture.columns);
  });

  it('a column the table does not have is an error (the check can fail)', () => {
    expect(kqlErrors('ContainerNetworkLogs | where Verdikt == "DROPPED"')[0]).toMatch(/^KS142/);
  });

  it('queries written for ACNS, reading its dynamic columns as Hubble lays them out, run unchanged', () => {
    const queries = [
      `ContainerNetworkLogs
| where TimeGenerated > ago(30m) and Verdict == "DROPPED"
| summarize Dropped = count() by TrafficDirection, SourceNamespace, SourcePodName, DestinationNamespace, DestinationPodName
| top 20 by Dropped`,
      `ContainerNetworkLogs
| where TrafficDirection == "INGRESS" and Verdict == "DROPPED"
| extend SrcIP = tostring(IP.source), DstIP = tostring(IP.destination)
| extend DstPort = coalesce(tostring(Layer4.TCP.destination_port), tostring(Layer4.UDP.destination_port))
| project TimeGenerated, SrcIP, DstIP, DstPort, Verdict, DropReason`,
      `ContainerNetworkLogs
| summarize Requests = sum(IngressFlowCount), Replies = sum(EgressFlowCount) by Source = tostring(IP.source), Workload = tostring(SourceWorkloads[0].name)
| top 10 by Requests`,
      `ContainerNetworkLogs
| where FlowType == "L7" and isnotempty(Layer7.dns)
| summarize Lookups = count() by Query = tostring(Layer7.dns.query), Rcode = tostring(Layer7.dns.rcode)`,
      `ContainerNetworkLogs
| summarize Forwarded = countif(Verdict == "FORWARDED"), Dropped = countif(Verdict == "DROPPED") by bin(TimeGenerated, 1m), TrafficDirection
| render timechart`,
    ];
    expect(queries.flatMap((q) => kqlErrors(q).map((e) => `${q.split('\n')[1]} → ${e}`))).toEqual([]);
  });
});
