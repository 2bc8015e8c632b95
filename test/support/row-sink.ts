import { concatData, type Batch, type ChunkWriter } from '../../src/batch/index.js';
import type { RowOfTable, TableKey } from '../../src/schema/index.js';
import type { Sink, Verdict } from '../../src/sink/index.js';
import { LinesWriter } from '../../src/sink/lines-writer.js';

/** The rows of a batch of JSON lines, as objects. */
export function rowsOf(batch: Batch): Record<string, unknown>[] {
  return concatData(batch)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A test sink that sees rows as objects: they are encoded as JSON lines as they are made (as the
 * local sink does), and each batch is read back before `take` gets it. What `take` throws is
 * retried by the retry chain, as a transient failure would be.
 */
export abstract class RowSink implements Sink {
  abstract readonly name: string;
  readonly maxBatchBytes = 8 * 1024 * 1024;
  readonly routes = ['memory'];

  writer<K extends TableKey>(_table: K): ChunkWriter<RowOfTable[K]> {
    return new LinesWriter<RowOfTable[K]>((row) => JSON.stringify(row));
  }

  async send(batch: Batch): Promise<void> {
    await this.take(batch.table, rowsOf(batch));
  }

  classify(err: unknown): Verdict {
    return { action: 'retry', reason: 'unknown', status: null, detail: String((err as Error)?.message ?? err) };
  }

  async setAside(): Promise<void> {
    throw new Error('a test sink refuses nothing for good');
  }

  protected abstract take(table: TableKey, rows: Record<string, unknown>[]): Promise<void>;

  async close(): Promise<void> {}
}

/** A RowSink from a function. */
export function rowSink(name: string, take: (table: TableKey, rows: Record<string, unknown>[]) => Promise<void>): Sink {
  return new (class extends RowSink {
    readonly name = name;
    protected take = take;
  })();
}
