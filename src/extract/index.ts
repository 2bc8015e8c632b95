export { Extractor, type ExtractorOptions } from './extractor.js';
export { parseHubbleLine } from './hubble-line.js';
export type { ExporterRecord, ExporterKind, ExtractOutput, DeadLetter, SkipReason } from './types.js';
