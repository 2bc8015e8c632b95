import { Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decompress } from '../../src/receive/decompress.js';
import { msgpackSpans } from '../../src/receive/msgpack-spans.js';
import '../../src/receive/event-time.js';
import { fluentBitCaptures } from '../support/fixtures.js';
import { msgpackBody } from '../support/fluent-bit-bodies.js';

describe('finding msgpack values without decoding them', () => {
  it('finds exactly the events msgpackr decodes, in every Fluent Bit msgpack capture', async () => {
    const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });
    const captures = fluentBitCaptures().filter((c) => c.headers['content-type'] === 'application/msgpack');
    expect(captures.length).toBeGreaterThanOrEqual(2);
    for (const c of captures) {
      const inflated = await decompress(c.body, c.headers['content-encoding'], 64 << 20);
      if (!inflated.ok) throw new Error(inflated.error.message);
      const body = inflated.body;
      const found = msgpackSpans(body, 65_536, 10_000_000, 1_000_000);
      expect(found.unsound).toBeNull();
      const whole = unpackr.unpackMultiple(body) as unknown[];
      expect(found.ends.map((end, i) => unpackr.unpack(body.subarray(i === 0 ? 0 : found.ends[i - 1], end)))).toEqual(whole);
      expect(found.ends[found.ends.length - 1]).toBe(body.length);
    }
  });

  it('refuses a container that declares more elements than the bytes left, or more than the cap', () => {
    expect(msgpackSpans(Buffer.from([0xdd, 0x00, 0x10, 0x00, 0x00, 0x01]), 1 << 30, 1e9, 10).unsound?.reason).toMatch(/more elements than the bytes left/);
    expect(msgpackSpans(Buffer.from([0xdc, 0x01, 0x00, ...Array(256).fill(1)]), 100, 1e9, 10).unsound?.reason).toMatch(/more than 100 elements/);
  });

  it('stops at maxItems top-level values: 2 MiB of one-byte values is refused after the limit, not listed whole', () => {
    const found = msgpackSpans(Buffer.alloc(2 * 1024 * 1024, 0x01), 65_536, 1e9, 1000);
    expect(found.tooManyItems).toBe(true);
    expect(found.ends).toHaveLength(1000);
  });

  it('keeps the sound values before a corrupt one, and counts declared values against the body limit', () => {
    const good = msgpackBody([{ log: 'a' }, { log: 'b' }]);
    const found = msgpackSpans(Buffer.concat([good, Buffer.from([0xc1, 0x00])]), 65_536, 1e6, 10);
    expect(found.ends).toHaveLength(2);
    expect(found.unsound?.offset).toBe(good.length);
    expect(msgpackSpans(good, 65_536, 3, 10).tooManyValues).toBe(true);
  });
});
