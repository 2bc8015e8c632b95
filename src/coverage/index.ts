export { CoverageWindow, type RunInfo, type UpstreamGap, type WindowEndReason, type WindowState } from './coverage-window.js';
export { CoverageLedger, type LedgerState } from './ledger.js';
export { configHash } from './config-hash.js';
export { UpstreamGaps, linePosition, upstreamGapsOptionsSchema, type LinePosition, type UpstreamGapsOptions, type UpstreamState, type UpstreamWindowReport } from './upstream-gaps.js';
