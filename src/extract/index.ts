export { Extractor, type ExtractorOptions } from './extractor.js';
export { parseHubbleLine } from './hubble-line.js';
export type { ExporterRecord, ExporterKind, ExtractOutput, DeadLetter, SkipReason, PieceSource, PieceHold, DecidedLine } from './types.js';
