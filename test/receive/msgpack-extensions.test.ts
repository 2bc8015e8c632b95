/**
 * Fluent Bit writes one msgpack extension, EventTime (type 0). msgpackr gives meaning to many
 * others (0x69/0x70 shared references and cycles, 0x74 typed arrays, -1 timestamps, Sets, Errors,
 * RegExps...): a 0.8 KB body of references decodes into a value every walk of which visits 2^40
 * paths, and a typed array holds millions of elements as one value. An event holding any of them
 * is set aside undecoded; the rest of its body goes on.
 */
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeMsgpack } from '../../src/receive/decode-msgpack.js';
import type { Decoded } from '../../src/receive/types.js';
import { spawnService } from '../support/child-service.js';
import { containerNodeOptions } from '../support/container-node-options.js';
import { FbTime, eventV1, eventV2, msgpackBody } from '../support/fluent-bit-bodies.js';
import { bodyWith, cyclicArray, dagArray, flowEvent, typedArray } from '../support/msgpack-extensions.js';

const LIMITS = { maxItems: 50_000, maxValues: 400_000, maxEventBytes: 2 * 1024 * 1024 };

function decoded(body: Buffer): Decoded {
  const d = decodeMsgpack(body, LIMITS);
  if ('tooMany' in d) throw new Error(`refused: ${d.tooMany}`);
  return d;
}

/** An extension value of any of msgpack's five fixext sizes or ext 8/16/32, of the given type. */
function ext(type: number, data: Buffer): Buffer {
  const t = type & 0xff;
  const fix: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
  if (fix[data.length] !== undefined) return Buffer.concat([Buffer.from([fix[data.length]!, t]), data]);
  if (data.length < 256) return Buffer.concat([Buffer.from([0xc7, data.length, t]), data]);
  if (data.length < 65_536) return Buffer.concat([Buffer.from([0xc8, data.length >> 8, data.length & 0xff, t]), data]);
  const head = Buffer.from([0xc9, 0, 0, 0, 0, t]);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

const plain = (i: number) => eventV1(1_795_161_600 + i, { log: `line ${i}`, stream: 'stdout' });

describe('msgpack extensions other than EventTime', () => {
  it('an event of shared references (a DAG 40 levels deep) is set aside at once, undecoded; the events around it go on', () => {
    const started = performance.now();
    const d = decoded(Buffer.concat([plain(0), bodyWith(dagArray(40)), plain(1)]));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(d.records.map((r) => r.record.log)).toEqual(['line 0', 'line 1']);
    // msgpackr reads 0x69 as a prefix of the value after it; msgpack itself as a value alone, so the
    // rest of the record reads as further events (each set aside too).
    expect(d.bad[0]!.reason).toBe('invalid_msgpack');
    expect(d.bad[0]!.message).toMatch(/extension type 105; Fluent Bit writes only type 0 \(EventTime\)/);
    expect(d.bad.length).toBeGreaterThan(1);
  });

  it('a cycle, a typed array, a timestamp (-1) and an unknown type are each set aside', () => {
    for (const [extra, type] of [
      [cyclicArray(), 105],
      [typedArray(1000), 116],
      [ext(-1, Buffer.alloc(8)), -1],
      [ext(0x42, Buffer.from('123')), 66],
      [ext(7, Buffer.alloc(300)), 7],
      [ext(0x73, Buffer.alloc(70_000)), 115],
    ] as const) {
      const d = decoded(Buffer.concat([bodyWith(extra), plain(2)]));
      expect(d.records.map((r) => r.record.log)).toEqual(['line 2']);
      expect(d.bad[0]!.message).toContain(`extension type ${type};`);
    }
  });

  it('EventTime is still read, in the header and in the record', () => {
    const d = decoded(Buffer.concat([eventV2(new FbTime(10, 500_000_000), { log: 'a', at: new FbTime(3, 0) }), flowEvent('u-1', Buffer.from([0x01]))]));
    expect(d.bad).toEqual([]);
    expect(d.records.map((r) => r.timeSec)).toEqual([10.5, 1_795_161_600]);
  });

  it('property: whatever extensions a body holds, every event without one is read and every event with one is set aside', () => {
    const event = fc.record({
      type: fc.option(fc.integer({ min: -128, max: 127 }), { nil: undefined }),
      size: fc.constantFrom(1, 2, 4, 8, 16, 0, 3, 200, 300),
      nested: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 12 }), (events) => {
        const parts = events.map((e, i) => {
          if (e.type === undefined) return plain(i);
          // Type 0 of a length other than 8 is not an EventTime either: msgpackr's unpack for it refuses.
          const value = ext(e.type, Buffer.alloc(e.type === 0 ? 8 : e.size, 0x61));
          return e.nested ? flowEvent(`u-${i}`, Buffer.concat([Buffer.from([0x91]), value])) : flowEvent(`u-${i}`, value);
        });
        const d = decoded(Buffer.concat(parts));
        const foreign = events.filter((e) => e.type !== undefined && e.type !== 0).length;
        expect(d.bad).toHaveLength(foreign);
        expect(d.records).toHaveLength(events.length - foreign);
      }),
      { numRuns: 300 },
    );
  });

  it('a body made only of ordinary events decodes as before', () => {
    const d = decoded(msgpackBody([{ log: 'x' }, { log: 'y' }]));
    expect(d.bad).toEqual([]);
    expect(d.records.map((r) => r.record.log)).toEqual(['x', 'y']);
  });
});

describe('the service, run as the image runs it, given shared references', () => {
  it('answers a body holding 0.8 KB of shared references at once and stays healthy, and so does the next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubble-adx-ext-'));
    const env = { NODE_OPTIONS: containerNodeOptions(), HUBBLE_ADX_SPOOL__DIRECTORY: join(dir, 'spool'), HUBBLE_ADX_SINK__TYPE: 'local', HUBBLE_ADX_SINK__LOCAL__DIRECTORY: join(dir, 'out') };
    const body = Buffer.concat([bodyWith(dagArray(40)), plain(0)]);
    const post = (port: number) =>
      fetch(`http://127.0.0.1:${port}/`, { method: 'POST', body, headers: { 'content-type': 'application/msgpack' }, signal: AbortSignal.timeout(10_000) }).then((r) => r.status);
    const healthy = (port: number) => fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status);
    const first = await spawnService(env);
    try {
      expect(await post(first.port)).toBe(200);
      expect(await healthy(first.port)).toBe(200);
    } finally {
      first.proc.kill('SIGKILL');
      await first.exited;
    }
    const second = await spawnService(env);
    try {
      expect(await healthy(second.port)).toBe(200);
      expect(await post(second.port)).toBe(200);
    } finally {
      second.proc.kill('SIGKILL');
      await second.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
