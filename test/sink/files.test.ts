/**
 * Files the sinks make hold flow data: only the service may read them. And the local sink keeps one
 * open file per table, however its writes race.
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { batchOf } from '../../src/batch/index.js';
import { DEFAULT_TABLE_NAMES, type RowOfTable } from '../../src/schema/index.js';
import { LocalFileSink } from '../../src/sink/index.js';
import { DeadLetterFiles } from '../../src/sink/kusto/dead-letter-files.js';
import { LinesWriter } from '../../src/sink/lines-writer.js';

const mode = (path: string) => statSync(path).mode & 0o777;
const dirs: string[] = [];
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), 'hubble-adx-files-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function deadLetterBatch(uuid: string) {
  const w = new LinesWriter<RowOfTable['deadLetters']>((r) => JSON.stringify(r));
  w.add({ TimeGenerated: '2026-01-01T00:00:00Z', Stage: 'receive', Reason: 'r', Message: uuid, NodeName: null, RawData: 'x', SchemaVersion: 4 } as RowOfTable['deadLetters']);
  return batchOf('deadLetters', [w.finish()!]);
}

/** This process's open descriptors on files under `dir`. */
const openUnder = (dir: string) =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${dir}/`);
    } catch {
      return false;
    }
  }).length;

describe('files the service makes are its own: directories 0700, files 0600', () => {
  it('the local sink', async () => {
    const dir = join(scratch(), 'data', 'nested');
    const sink = new LocalFileSink({ directory: dir, maxFileBytes: 1 << 20, maxFiles: 0, tableNames: DEFAULT_TABLE_NAMES });
    await sink.send(deadLetterBatch('one'));
    await sink.close();
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, '..'))).toBe(0o700);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(mode(join(dir, files[0]!))).toBe(0o600);
  });

  it('the dead-letter directory of the ADX sink', async () => {
    const dir = join(scratch(), 'dead-letter');
    const rows = await new DeadLetterFiles(dir, 1 << 30).write('HubbleFlows', 'multijson', Buffer.from('{"Uuid":"x"}\n'), 1, { reason: 'mapping' });
    expect(mode(dir)).toBe(0o700);
    expect(readdirSync(dir).map((f) => mode(join(dir, f)))).toEqual([0o600, 0o600]);
    expect(rows.startsWith(dir)).toBe(true);
  });
});

describe('the local sink: one open file per table', () => {
  it('eight first writes of one table at once share one file and one handle, closed at the end', async () => {
    const dir = scratch();
    const sink = new LocalFileSink({ directory: dir, maxFileBytes: 1 << 20, maxFiles: 0, tableNames: DEFAULT_TABLE_NAMES });
    await Promise.all(Array.from({ length: 8 }, (_, i) => sink.send(deadLetterBatch(`race-${i}`))));
    expect(readdirSync(dir)).toHaveLength(1);
    expect(openUnder(dir)).toBe(1);
    await sink.close();
    expect(openUnder(dir)).toBe(0);
    const text = readFileSync(join(dir, readdirSync(dir)[0]!), 'utf8');
    for (let i = 0; i < 8; i++) expect(text).toContain(`race-${i}`);
  });

  it('writes racing a rotation all land, each file whole, and no handle is left open', async () => {
    const dir = scratch();
    // Every batch is larger than the file bound: each write rotates.
    const sink = new LocalFileSink({ directory: dir, maxFileBytes: 4096, maxFiles: 0, tableNames: DEFAULT_TABLE_NAMES });
    const big = (i: number) => {
      const w = new LinesWriter<RowOfTable['deadLetters']>((r) => JSON.stringify(r));
      w.add({ TimeGenerated: '2026-01-01T00:00:00Z', Stage: 'receive', Reason: 'r', Message: `rot-${i}`, NodeName: null, RawData: 'y'.repeat(5000), SchemaVersion: 4 } as RowOfTable['deadLetters']);
      return batchOf('deadLetters', [w.finish()!]);
    };
    await Promise.all(Array.from({ length: 6 }, (_, i) => sink.send(big(i))));
    expect(openUnder(dir)).toBe(0);
    await sink.close();
    const files = readdirSync(dir);
    expect(files).toHaveLength(6);
    const lines = files.flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n'));
    expect(lines.map((l) => (JSON.parse(l) as { Message: string }).Message).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `rot-${i}`));
  });
});
