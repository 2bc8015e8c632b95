import type { Logger } from './logger.js';
import type { Config } from './config/index.js';
import type { Metrics } from './metrics/index.js';
import { TABLE_KEYS, type RowOfTable, type TableKey } from './schema/index.js';
import { batchOf } from './batch/index.js';
import { avroChunkOf, createKustoSink, deliveryFor, listDeadLetters, readDeadLetter, removeDeadLetter } from './sink/index.js';

export interface RedriveSummary {
  batches: number;
  /** Acknowledged by ADX, and removed. */
  sent: number;
  rows: number;
  /** Refused for good again: written anew to sink.kusto.deadLetterDirectory, the old copy removed. */
  refusedAgain: number;
  /** Left where they are: an unknown table, or the dead-letter directory full. */
  left: number;
}

/**
 * Send dead-letter batches again through the normal ADX sink (after a mapping fix, say), oldest
 * first. A batch is removed only once ADX acknowledged it, or once it was written anew to the
 * dead-letter directory because ADX refused it again; nothing is removed otherwise.
 */
export async function redrive(dir: string, config: Config, metrics: Metrics, log: Logger): Promise<RedriveSummary> {
  const sink = createKustoSink(config, metrics);
  const delivery = deliveryFor(sink, config, metrics, log);
  const keyOf = new Map<string, TableKey>(TABLE_KEYS.map((k) => [config.sink.tables[k], k]));
  const summary: RedriveSummary = { batches: 0, sent: 0, rows: 0, refusedAgain: 0, left: 0 };
  try {
    for (const batch of await listDeadLetters(dir)) {
      summary.batches++;
      const key = keyOf.get(batch.table);
      if (!key) {
        log.warn({ file: batch.rowsFile, table: batch.table }, 'dead-letter batch for a table not in sink.tables; left in place');
        summary.left++;
        continue;
      }
      let deadLettered: number;
      let rows: number;
      try {
        const held = await readDeadLetter(batch);
        let chunk;
        if ('avro' in held) {
          if (config.sink.kusto.format !== 'avro') throw new Error('an Avro dead-letter batch is redriven with sink.kusto.format avro');
          chunk = await avroChunkOf(held.avro);
        } else {
          // Rows as JSON (an older version's, or multijson): encoded again the configured way.
          const w = sink.writer(key);
          for (const r of held.rows) w.add(r as RowOfTable[typeof key]);
          chunk = w.finish();
        }
        const toSend = batchOf(key, chunk ? [chunk] : []);
        rows = toSend.rows;
        deadLettered = (await delivery.deliver(toSend)).setAside;
      } catch (err) {
        log.error({ err, file: batch.rowsFile }, 'could not redrive this batch; left in place');
        summary.left++;
        continue;
      }
      await removeDeadLetter(batch);
      if (deadLettered > 0) summary.refusedAgain++;
      else {
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
