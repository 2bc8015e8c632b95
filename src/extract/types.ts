/** The record kinds Hubble's exporter writes, one top-level key each. */
export const EXPORTER_KINDS = ['flow', 'lost_events', 'agent_event', 'debug_event', 'node_status'] as const;
export type ExporterKind = (typeof EXPORTER_KINDS)[number];

/** One exporter record pulled out of a log line or a merged map. */
export interface ExporterRecord {
  kind: ExporterKind;
  payload: Record<string, unknown>;
  /** Top-level node_name of the exporter record (`cluster/node` on AKS). */
  nodeName: string | null;
  /** Top-level time of the exporter record. */
  time: string | null;
  /** Time of the log line (CRI time, else Fluent Bit's event time), for records without one. */
  lineTime: string | null;
  lineTimeSec: number | null;
  /** The log line it was read from (null for a map merged by Fluent Bit): kept if the record is refused. */
  line: string | null;
}

export type SkipReason = 'agent_log' | 'other_json' | 'no_log_field' | 'empty_line' | 'partial_piece';

export interface DeadLetter {
  stage: 'receive' | 'extract' | 'normalize' | 'sink';
  reason: string;
  message: string;
  raw: string;
  nodeName: string | null;
}

/**
 * Whoever brought CRI partial pieces (a request): the extractor keeps count of the unfinished lines
 * holding its pieces, so that it can be kept (spooled) until those lines are finished.
 */
export interface PieceSource {
  pendingLines: number;
}

/** Where the extractor tells each outcome: the output of the request (or tick) being made into rows. */
export interface ExtractOutput {
  record(r: ExporterRecord): void;
  skip(reason: SkipReason): void;
  dead(d: DeadLetter): void;
  /** A line made of pieces was handed on (as a record, a skip or a dead letter): whose pieces it used. */
  piecesDone(sources: readonly PieceSource[]): void;
}

export type ParsedLine =
  | { ok: true; kind: ExporterKind; obj: Record<string, unknown> }
  | { ok: false; skip: SkipReason }
  | { ok: false; dead: string; message: string };
