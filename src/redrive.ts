import type { Logger } from './logger.js';
import type { Config } from './config/index.js';
import type { Metrics } from './metrics/index.js';
import { TABLE_KEYS, type RowOfTable, type TableKey } from './schema/index.js';
import { batchOf } from './batch/index.js';
import { DeadLetterUnreadable, avroChunkOf, createKustoSink, deliveryFor, listDeadLetters, noteRefusedAgain, readDeadLetter, removeDeadLetter, type DeadLetterBatch, type Sink, type UnreadableDeadLetter } from './sink/index.js';

export interface RedriveSummary {
  batches: number;
  /** Acknowledged by ADX, and removed. */
  sent: number;
  rows: number;
  /** Refused for good again: left where they are, their reason file updated with ADX's new answer. */
  refusedAgain: number;
  /** Left where they are: an unknown table, a batch that could not be sent, or a file in `problems`. */
  left: number;
  /** Each file left because it cannot be read or sent as it is, and why. */
  problems: UnreadableDeadLetter[];
}

/**
 * Send dead-letter batches again through the normal ADX sink (after a mapping fix, say), oldest
 * first. A batch is removed only once ADX acknowledged it; one ADX refuses again stays where it is,
 * its reason file saying what ADX answered this time (it is never written anew: a full directory
 * would have no room for the copy, and the redrive would wait for room forever). A file that
 * cannot be read (a reason file cut short, rows that are not whole, fewer rows than the batch had,
 * more bytes than any batch) is left where it is and reported; the others are still sent.
 */
export async function redrive(dir: string, config: Config, metrics: Metrics, log: Logger): Promise<RedriveSummary> {
  const sink = createKustoSink(config, metrics);
  // Refused again: the verdict is kept for the batch's own reason file, nothing is written.
  let refusal: Record<string, unknown> | null = null;
  const inPlace: Sink = {
    name: sink.name,
    maxBatchBytes: sink.maxBatchBytes,
    routes: sink.routes,
    writer: (table) => sink.writer(table),
    send: (batch, route) => sink.send(batch, route),
    classify: (err) => sink.classify(err),
    setAside: (_batch, verdict, route, attempts) => {
      refusal = { reason: verdict.reason, detail: verdict.detail, status: verdict.status, attempts, route };
      return Promise.resolve();
    },
    close: () => sink.close(),
  };
  const delivery = deliveryFor(inPlace, config, metrics, log);
  const keyOf = new Map<string, TableKey>(TABLE_KEYS.map((k) => [config.sink.tables[k], k]));
  // No batch hubble-adx writes is larger than a streaming request or a request body inflated.
  const maxBytes = Math.max(config.limits.maxDecompressedBytes, config.sink.kusto.maxRequestBytes);
  const summary: RedriveSummary = { batches: 0, sent: 0, rows: 0, refusedAgain: 0, left: 0, problems: [] };
  const leave = (p: UnreadableDeadLetter) => {
    log.error({ file: p.file, reason: p.reason }, 'dead-letter batch left in place');
    summary.problems.push(p);
    summary.left++;
  };
  try {
    const listed = await listDeadLetters(dir);
    for (const p of listed.unreadable) {
      summary.batches++;
      leave(p);
    }
    for (const batch of listed.batches) {
      summary.batches++;
      const key = keyOf.get(batch.table);
      if (!key) {
        log.warn({ file: batch.rowsFile, table: batch.table }, 'dead-letter batch for a table not in sink.tables; left in place');
        summary.left++;
        continue;
      }
      let deadLettered: number;
      let rows: number;
      refusal = null;
      try {
        const toSend = await batchToSend(batch, key, sink, config, maxBytes);
        rows = toSend.rows;
        deadLettered = (await delivery.deliver(toSend)).setAside;
        if (refusal) await noteRefusedAgain(batch, refusal);
      } catch (err) {
        if (err instanceof DeadLetterUnreadable) leave({ file: err.file, reason: err.message });
        else {
          log.error({ err, file: batch.rowsFile }, 'could not redrive this batch; left in place');
          summary.left++;
        }
        continue;
      }
      if (deadLettered > 0) summary.refusedAgain++;
      else {
        await removeDeadLetter(batch);
        summary.sent++;
        summary.rows += rows;
      }
      log.info({ file: batch.rowsFile, rows, refusedAgain: deadLettered > 0 }, 'dead-letter batch redriven');
    }
  } finally {
    delivery.stop();
    await sink.close();
  }
  return summary;
}

/** A dead-letter batch as the sink sends it, once it is known to hold every row it had. */
async function batchToSend(batch: DeadLetterBatch, key: TableKey, sink: ReturnType<typeof createKustoSink>, config: Config, maxBytes: number) {
  const held = await readDeadLetter(batch, maxBytes);
  let chunk;
  if ('avro' in held) {
    if (config.sink.kusto.format !== 'avro') throw new Error('an Avro dead-letter batch is redriven with sink.kusto.format avro');
    chunk = await avroChunkOf(held.avro).catch((err: unknown) => {
      throw new DeadLetterUnreadable(batch.rowsFile, `it is not a whole Avro file: ${(err as Error).message}`);
    });
  } else {
    // Rows as JSON (an older version's, or multijson): encoded again the configured way.
    const w = sink.writer(key);
    for (const r of held.rows) w.add(r as RowOfTable[typeof key]);
    chunk = w.finish();
  }
  const toSend = batchOf(key, chunk ? [chunk] : []);
  // An Avro file cut short decodes to fewer rows (none, when its one block is cut), not to an error.
  if (batch.rows !== null && toSend.rows !== batch.rows) {
    throw new DeadLetterUnreadable(batch.rowsFile, `it holds ${toSend.rows} rows where the batch had ${batch.rows} (cut short?)`);
  }
  if (toSend.rows === 0) throw new DeadLetterUnreadable(batch.rowsFile, 'it holds no rows');
  return toSend;
}
