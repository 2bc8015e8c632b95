import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { boundedJson } from '../../json-values.js';

/**
 * Batches ADX refused for good, kept on disk: `<dir>/<table>-<time>-<seq>.jsonl` holds the rows
 * (one JSON object per row, as the local sink writes them), `.reason.json` beside it says why.
 */
export class DeadLetterFiles {
  private seq = 0;
  constructor(private readonly dir: string) {}

  async write(table: string, rows: readonly unknown[], reason: Record<string, unknown>): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
    const base = join(this.dir, `${table}-${stamp}-${process.pid}-${String(this.seq++).padStart(4, '0')}`);
    let text = '';
    for (const r of rows) text += boundedJson(r) + '\n';
    await writeFile(`${base}.jsonl`, text);
    await writeFile(`${base}.reason.json`, JSON.stringify({ table, rows: rows.length, ...reason }, null, 2) + '\n');
    return `${base}.jsonl`;
  }
}
