import type { FlowRow, IdentityRow } from '../schema/index.js';
import type { AggregationOptions } from './aggregator.js';
import { decisivePolicy } from './decisive-policy.js';
import { entityOf, fqdns } from './entities.js';
import { LabelFactsCache } from './label-facts.js';
import type { FlowFilterSpec } from './flow-filter.js';
import { IdentityCatalog, type EndpointLabels } from './identity-catalog.js';
import { ipScope, NetworkNames } from './ip-scope.js';
import { Pseudonymizer } from './pseudonymize.js';
import { OutcomeRules, type OutcomeOptions } from './outcome-rules.js';
import { LabelBag, workloadFromPodName } from './workload.js';
import { StartupError } from '../startup-error.js';

function configured<T>(key: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    throw new StartupError(key, (err as Error).message);
  }
}

export interface EnrichOptions {
  cluster: string;
  enrich: {
    decisivePolicy: boolean;
    entities: boolean;
    workloads: boolean;
    labelKeys: readonly string[];
    endpointLabels: EndpointLabels;
    identityRefreshSeconds: number;
    identityCacheMaxEntries: number;
    identityCacheMaxBytes: number;
    ipScope: boolean;
    networks: readonly { name: string; cidrs: readonly string[] }[];
    region?: string | undefined;
    environment?: string | undefined;
    pseudonymize: { enabled: boolean; key?: string | undefined; publicIps: boolean; urlQueries: boolean };
  };
  filters: { allowList: readonly FlowFilterSpec[]; denyList: readonly FlowFilterSpec[] };
  sampling: { allowedOneIn: number };
  aggregation: AggregationOptions & { enabled: boolean };
}

export type Outcome = 'kept' | 'filtered' | 'sampled_out' | 'aggregated';

/**
 * The stage between normalize and the spool: adds the columns that answer audit questions (the
 * deciding policy, what each endpoint is, who owns it, where an address is), then applies the
 * configured filters, sampling, pseudonymization and aggregation, in that order (filters and sampling see raw
 * values; aggregation groups what is left). Endpoint labels of what is kept go to the identity
 * catalog after everything that reads them.
 */
export class Enricher {
  /** The outcome rules of this process's configuration. */
  private readonly own: OutcomeRules;
  /** The rules flows are decided by now: the own ones, or those of the earlier run that counts them. */
  private rules: OutcomeRules;
  /** Rules of earlier runs, by their settings, kept while in force or while they hold aggregate rows. */
  private readonly earlier = new Map<string, OutcomeRules>();
  private readonly networks: NetworkNames;
  private readonly pseudonymizer: Pseudonymizer | null;
  private readonly labelFacts: LabelFactsCache;
  private readonly catalog: IdentityCatalog;

  constructor(private readonly o: EnrichOptions) {
    // Each part checks its own settings; what it refuses names the key (one line at startup).
    this.own = configured('filters', () => new OutcomeRules(o));
    this.rules = this.own;
    this.networks = configured('enrich.networks', () => new NetworkNames(o.enrich.networks));
    const p = o.enrich.pseudonymize;
    this.pseudonymizer = p.enabled && p.key ? new Pseudonymizer(p.key) : null;
    const limits = { maxEntries: o.enrich.identityCacheMaxEntries, maxBytes: o.enrich.identityCacheMaxBytes };
    this.labelFacts = new LabelFactsCache(new LabelBag(o.enrich.labelKeys), { entities: o.enrich.entities, workloads: o.enrich.workloads }, limits);
    this.catalog = new IdentityCatalog(o.enrich.endpointLabels, o.enrich.identityRefreshSeconds, limits);
  }

  /** Identities forgotten to stay within enrich.identityCache* since the start. */
  get identityEvictions(): number {
    return this.catalog.evicted;
  }

  /**
   * What becomes of a flow: filtered, sampled out, kept on a row of its own, or `aggregated`: to be
   * folded into an aggregate row with `absorb`. Which flows are aggregated depends only on the flow,
   * the configuration and `aggregateAllowed` (overload.mode aggregate-allowed was under pressure when
   * its request came), so a request made into rows again after a crash gets the same answers.
   */
  process(row: FlowRow, now = Date.now(), aggregateAllowed = false): Outcome {
    const rules = this.rules;
    this.enrich(row, rules);
    if (rules.filters.active && !rules.filters.pass(row)) return 'filtered';
    // Sampled by the addresses as they came: which flows are kept must not depend on the
    // pseudonymization key (a record made into rows again after a key change is decided the same way).
    if (!rules.sampler.keep(row)) return 'sampled_out';
    if (this.pseudonymizer) this.pseudonymize(row, this.pseudonymizer);
    this.catalog.observe(row, now);
    return rules.aggregatorFor(row, aggregateAllowed) ? 'aggregated' : 'kept';
  }

  /** Fold a flow `process` called aggregated into its aggregate row. */
  absorb(row: FlowRow, aggregateAllowed = false): void {
    this.rules.aggregatorFor(row, aggregateAllowed)?.absorb(row);
  }

  /**
   * From now on, decide flows by these outcome settings (those of the run that counts the records
   * that come next), or by this process's own (null). False: the settings are not valid now (a
   * filter this version refuses); the own rules decide instead.
   */
  decideWith(given: (Omit<OutcomeOptions, 'enrich'> & { enrich?: OutcomeOptions['enrich'] | undefined }) | null): boolean {
    if (given === null) {
      this.rules = this.own;
      return true;
    }
    const settings: OutcomeOptions = { filters: given.filters, sampling: given.sampling, aggregation: given.aggregation, enrich: given.enrich ?? this.ownSettings().enrich };
    const key = JSON.stringify(settings);
    if (key === JSON.stringify(this.ownSettings())) {
      this.rules = this.own;
      return true;
    }
    let rules = this.earlier.get(key);
    if (!rules) {
      try {
        rules = new OutcomeRules(settings);
      } catch {
        this.rules = this.own;
        return false;
      }
      this.earlier.set(key, rules);
    }
    this.rules = rules;
    return true;
  }

  /** Aggregate rows that can still be opened before aggregation.maxKeys: below a slice, take them first. */
  get aggregateRoom(): number {
    return this.rules.room;
  }

  /** HubbleIdentities rows for the identities that kept flows used, since the last call. */
  takeIdentities(): IdentityRow[] {
    return this.catalog.take();
  }

  /** Every aggregate row held now; aggregation starts afresh. */
  takeAggregated(): FlowRow[] {
    const rows: FlowRow[] = [];
    this.own.take(rows);
    for (const [key, rules] of this.earlier) {
      rules.take(rows);
      if (rules !== this.rules) this.earlier.delete(key);
    }
    return rows;
  }

  private ownSettings(): OutcomeOptions {
    return { filters: this.o.filters, sampling: this.o.sampling, aggregation: this.o.aggregation, enrich: { entities: this.o.enrich.entities, workloads: this.o.enrich.workloads } };
  }

  private enrich(row: FlowRow, rules: OutcomeRules): void {
    const e = this.o.enrich;
    if (e.decisivePolicy) {
      const p = decisivePolicy(row);
      if (p) {
        row.PolicyName = p.name;
        row.PolicyNamespace = p.namespace;
        row.PolicyKind = p.kind;
      }
    }
    const src = this.labelFacts.of(row.SourceIdentity, row.SourceLabels);
    const dst = this.labelFacts.of(row.DestinationIdentity, row.DestinationLabels);
    if (rules.entities) {
      row.SourceEntity = entityOf(src.entity, row.SourceIdentity, row.SourcePodName, row.SourceClusterName, row.Cluster);
      row.DestinationEntity = entityOf(dst.entity, row.DestinationIdentity, row.DestinationPodName, row.DestinationClusterName, row.Cluster);
      row.DestinationFqdns = fqdns(row.DestinationNames, dst.fqdnLabels);
      row.SourceCidrGroups = src.cidrGroups;
      row.DestinationCidrGroups = dst.cidrGroups;
    }
    if (rules.workloads) {
      if (row.SourceWorkload === null && row.SourcePodName !== null) {
        const w = workloadFromPodName(row.SourcePodName);
        if (w) [row.SourceWorkload, row.SourceWorkloadKind] = [w.name, w.kind];
      }
      if (row.DestinationWorkload === null && row.DestinationPodName !== null) {
        const w = workloadFromPodName(row.DestinationPodName);
        if (w) [row.DestinationWorkload, row.DestinationWorkloadKind] = [w.name, w.kind];
      }
      row.SourceServiceAccount = src.serviceAccount;
      row.DestinationServiceAccount = dst.serviceAccount;
      row.SourceLabelValues = src.labelValues;
      row.DestinationLabelValues = dst.labelValues;
    }
    if (e.ipScope) {
      row.SourceIpScope = ipScope(row.SourceIp);
      row.DestinationIpScope = ipScope(row.DestinationIp);
    }
    row.SourceNetworkName = this.networks.nameOf(row.SourceIp);
    row.DestinationNetworkName = this.networks.nameOf(row.DestinationIp);
    row.Region = e.region ?? null;
    row.Environment = e.environment ?? null;
  }

  private pseudonymize(row: FlowRow, p: Pseudonymizer): void {
    const cfg = this.o.enrich.pseudonymize;
    if (cfg.publicIps) {
      if (row.SourceIp !== null && ipScope(row.SourceIp) === 'public') row.SourceIp = p.token(row.SourceIp);
      if (row.DestinationIp !== null && ipScope(row.DestinationIp) === 'public') row.DestinationIp = p.token(row.DestinationIp);
      if (row.SourceIpXlated !== null && ipScope(row.SourceIpXlated) === 'public') row.SourceIpXlated = p.token(row.SourceIpXlated);
    }
    if (cfg.urlQueries && row.HttpUrl !== null) row.HttpUrl = p.url(row.HttpUrl);
  }
}
