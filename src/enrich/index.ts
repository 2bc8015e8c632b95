export { Enricher, type EnrichOptions, type Outcome } from './enricher.js';
export { decisivePolicy } from './decisive-policy.js';
export { FlowFilters, parseSelector, type FlowFilterSpec } from './flow-filter.js';
export { ipScope } from './ip-scope.js';
export { workloadFromPodName } from './workload.js';
