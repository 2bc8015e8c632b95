export { createMetrics, type Metrics } from './registry.js';
export { LabelCap, OTHER } from './label-cap.js';
export { CountsPublisher } from './publish-counts.js';
export { PipelineGauges, type PipelineState } from './pipeline-gauges.js';
