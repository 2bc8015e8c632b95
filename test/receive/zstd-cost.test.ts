/**
 * A zstd frame may ask for a window up to limits.maxDecompressedBytes and be made of one-byte RLE
 * blocks (4 bytes each on the wire). fzstd shifts its whole window once per block, on the event
 * loop: 80 KB of such blocks blocked it for 4 s. Node's own zstd (22.15 and later, the image's Node
 * 24) decodes off the event loop; older Nodes refuse such a body (413) instead of blocking.
 */
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decompress } from '../../src/receive/decompress.js';
import { zstd } from '../support/fluent-bit-bodies.js';
import { slowZstd } from '../support/hostile-bodies.js';

const MAX = 8 * 1024 * 1024;
const native = typeof (zlib as unknown as { zstdDecompress?: unknown }).zstdDecompress === 'function';

/** The longest the event loop went without running a 10 ms timer while `work` ran. */
async function worstStall(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 10);
  try {
    await work();
    await new Promise((r) => setTimeout(r, 30));
  } finally {
    clearInterval(timer);
  }
  return worst;
}

describe('zstd bodies cost what they inflate to, not what their blocks make a decoder do', () => {
  const first = Buffer.from('{"log":"one line"}\n');
  const body = slowZstd(first, 20_000);

  it(`a frame of 20,000 one-byte blocks over an 8 MiB window neither blocks the event loop nor is lost: ${native ? 'decoded off the loop (Node zstd)' : 'refused 413 (fzstd)'}`, async () => {
    let result: Awaited<ReturnType<typeof decompress>> | null = null;
    const stall = await worstStall(async () => (result = await decompress(body, 'zstd', MAX)));
    expect(stall).toBeLessThan(500);
    const r = result!;
    if (native) {
      expect(r.ok && r.body.length).toBe(first.length + 20_000);
    } else {
      expect(!r.ok && r.error.status).toBe(413);
      expect(!r.ok && r.error.message).toMatch(/decodes on its event loop/);
    }
  });

  it('an ordinary zstd body (frames as Fluent Bit writes them) is decoded on every Node', async () => {
    const text = Buffer.from('{"log":"x"}\n'.repeat(200_000));
    const r = await decompress(zstd(text), 'zstd', MAX);
    expect(r.ok && r.body.equals(text)).toBe(true);
  });

  it('a zstd body past the bound is refused 413 on every Node', async () => {
    const r = await decompress(zstd(Buffer.alloc(MAX + 1, 0x61)), 'zstd', MAX);
    expect(!r.ok && r.error.reason).toBe('decompressed_too_large');
  });
});
