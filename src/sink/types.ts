import type { Batch, ChunkWriter } from '../batch/index.js';
import type { RowOfTable, TableKey } from '../schema/index.js';

/** What a failed attempt means for its batch. */
export interface Verdict {
  /** retry it later; split it in halves; move it to the sink's next route; or set it aside for good. */
  action: 'retry' | 'split' | 'fallback' | 'dead_letter';
  /** Short, fixed vocabulary (a metric label): throttled, server, network, timeout, auth, too_large, permanent... */
  reason: string;
  status: number | null;
  detail: string;
}

/**
 * Where batches go, one attempt at a time. Rows are encoded the sink's way as they are made
 * (`writer`), so a batch is bytes. Retrying, splitting, falling back and setting aside are decided
 * by the one retry chain (retry-chain.ts) from what `classify` says of each failure.
 */
export interface Sink {
  readonly name: string;
  /** A writer for the rows of `table` made from one slice of a request. */
  writer<K extends TableKey>(table: K): ChunkWriter<RowOfTable[K]>;
  /** Largest batch, in encoded bytes, worth handing over at once. */
  readonly maxBatchBytes: number;
  /** Routes a batch may take, tried in this order (ADX managed mode: streaming, then queued). */
  readonly routes: readonly string[];
  /** One attempt: resolves once the destination durably took the whole batch; rejects with what happened. */
  send(batch: Batch, route: string): Promise<void>;
  /** What a rejection of `send` means. */
  classify(err: unknown): Verdict;
  /** Keep rows refused for good where an operator finds them; rejects when they cannot be kept (they stay pending). */
  setAside(batch: Batch, verdict: Verdict, route: string, attempts: number): Promise<void>;
  close(): Promise<void>;
}
