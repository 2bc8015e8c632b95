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

/** A hold on whoever brought a piece, released once the line it is part of is decided. */
export interface PieceHold {
  release(): void;
}

/**
 * Whoever brought CRI partial pieces (a spooled request): each unfinished line holding its pieces
 * takes a hold on it, so that it stays in the spool until the line is decided.
 */
export interface PieceSource {
  hold(): PieceHold;
}

/** A line made of pieces that was decided (finished, or given up): whose pieces it held. */
export interface DecidedLine {
  sources: readonly PieceSource[];
  /** Still held: released by whoever decided the line, once it has made sure the sources outlive what it made of them. */
  holds: readonly PieceHold[];
}

/** Where the extractor tells each outcome: the output of the request (or tick) being made into rows. */
export interface ExtractOutput {
  record(r: ExporterRecord): void;
  skip(reason: SkipReason): void;
  dead(d: DeadLetter): void;
  /** A line made of pieces was handed on (as a record, a skip or a dead letter): whose pieces it used. */
  lineDecided(line: DecidedLine): void;
}

export type ParsedLine =
  | { ok: true; kind: ExporterKind; obj: Record<string, unknown> }
  | { ok: false; skip: SkipReason }
  | { ok: false; dead: string; message: string };
