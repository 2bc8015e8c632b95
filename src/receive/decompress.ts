import * as zlib from 'node:zlib';
import { brotliDecompress, gunzip, constants as zc } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import snappy from 'snappyjs';
import type { BodyError } from './types.js';
import { zstdDeclared } from './zstd-frames.js';

export type Decompressed = { ok: true; body: Buffer } | { ok: false; error: BodyError };

class OutputTooLarge extends Error {}

const tooLarge = (encoding: string, max: number, why?: string): Decompressed => ({
  ok: false,
  error: {
    status: 413,
    reason: 'decompressed_too_large',
    message: `${encoding} body inflates past limits.maxDecompressedBytes (${max})${why ? `: ${why}` : ''}`,
  },
});

/**
 * The most a snappy block can inflate per input byte: a 3-byte copy element yields at most 64 bytes.
 * A header declaring more than that for its input is a lie, refused before anything is allocated.
 */
const SNAPPY_MAX_RATIO = 22;

const corrupt = (encoding: string, err: unknown): Decompressed => ({
  ok: false,
  error: { status: 400, reason: 'invalid_compression', message: `${encoding} body cannot be decompressed: ${(err as Error).message}` },
});

const MIN_CHUNK = 64 * 1024;
const MAX_CHUNK = 8 * 1024 * 1024;

/**
 * zlib's default 16 KiB output chunk makes one thread-pool round trip per 16 KiB inflated, and
 * several chunks are then copied into one buffer: for a Fluent Bit body of a few MiB that overhead
 * was twice the inflating itself (bench: 13.4 -> 5.0 us per 3.6 KB line with 1 MiB chunks). The
 * gzip trailer states the inflated size (ISIZE, RFC 1952): one chunk of that size, bounded, takes
 * the whole output. It is only a size hint: a wrong one costs more chunks, never a wrong result.
 */
function chunkSizeFor(body: Buffer, max: number): number {
  const isize = body.length >= 18 ? body.readUInt32LE(body.length - 4) : 0;
  const want = isize > 0 ? isize + 1 : body.length * 16;
  return Math.max(MIN_CHUNK, Math.min(want, MAX_CHUNK, max));
}

function gunzipBounded(body: Buffer, max: number): Promise<Decompressed> {
  return new Promise((resolve) => {
    // maxOutputLength makes zlib stop inflating at the bound: a gzip bomb costs at most `max` bytes.
    gunzip(body, { maxOutputLength: max, finishFlush: zc.Z_FINISH, chunkSize: chunkSizeFor(body, max) }, (err, out) => {
      if (!err) return resolve({ ok: true, body: out });
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return resolve(tooLarge('gzip', max));
      resolve(corrupt('gzip', err));
    });
  });
}

/** Brotli: what the spool stores plain bodies as (and any client may send). */
function unbrotliBounded(body: Buffer, max: number): Promise<Decompressed> {
  return new Promise((resolve) => {
    brotliDecompress(body, { maxOutputLength: max, chunkSize: Math.max(MIN_CHUNK, Math.min(body.length * 32, MAX_CHUNK, max)) }, (err, out) => {
      if (!err) return resolve({ ok: true, body: out });
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return resolve(tooLarge('br', max));
      resolve(corrupt('br', err));
    });
  });
}

type NativeZstdDecompress = (body: Buffer, options: { maxOutputLength: number; chunkSize: number }, callback: (err: Error | null, out: Buffer) => void) => void;

/**
 * Node's own zstd (libzstd, Node 22.15 and later: the image's Node 24) decodes on the thread pool
 * with an output bound, as gzip does. Older Nodes (this project's Node 20 machines) use fzstd, which
 * runs on the event loop and moves its whole window once per block: 80 KB of one-byte blocks over an
 * 8 MiB window blocked the loop for 4 s. There, a body whose frames would move more than this is refused.
 */
const nativeZstd = (zlib as unknown as { zstdDecompress?: NativeZstdDecompress }).zstdDecompress;
const FZSTD_WINDOW_SHIFT_BUDGET = 1024 * 1024 * 1024;

function unzstdBounded(body: Buffer, max: number): Decompressed | Promise<Decompressed> {
  const declared = zstdDeclared(body);
  if (typeof declared === 'string') return corrupt('zstd', new Error(declared));
  if (declared.contentBytes > max) return tooLarge('zstd', max, `its frames declare ${declared.contentBytes} bytes`);
  if (declared.largestWindow > max) return tooLarge('zstd', max, `a frame asks for a ${declared.largestWindow}-byte window`);
  if (nativeZstd) {
    const decode = nativeZstd;
    return new Promise((resolve) => {
      // One output chunk of the declared size when a frame states it, as for gzip (bounded either way).
      const chunkSize = Math.max(MIN_CHUNK, Math.min(declared.contentBytes > 0 ? declared.contentBytes + 1 : body.length * 16, MAX_CHUNK, max));
      decode(body, { maxOutputLength: max, chunkSize }, (err, out) => {
        if (!err) return resolve({ ok: true, body: out });
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return resolve(tooLarge('zstd', max));
        resolve(corrupt('zstd', err));
      });
    });
  }
  if (declared.windowShiftBytes > FZSTD_WINDOW_SHIFT_BUDGET) {
    return tooLarge('zstd', max, `its frames hold more blocks over a larger window than Node ${process.versions.node} decodes on its event loop (Node 22.15 and later decode it)`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  let ended = false;
  try {
    const stream = new ZstdDecompress((chunk, final) => {
      total += chunk.length;
      if (total > max) throw new OutputTooLarge();
      chunks.push(chunk);
      if (final) ended = true;
    });
    stream.push(body, true);
  } catch (err) {
    if (err instanceof OutputTooLarge) return tooLarge('zstd', max);
    return corrupt('zstd', err);
  }
  if (!ended && total === 0) return corrupt('zstd', new Error('no complete frame'));
  return { ok: true, body: Buffer.concat(chunks, total) };
}

function unsnappyBounded(body: Buffer, max: number): Decompressed {
  const declared = snappyDeclaredLength(body);
  if (declared < 0) return corrupt('snappy', new Error('bad length header'));
  if (declared > max) return tooLarge('snappy', max, `its header declares ${declared} bytes`);
  if (declared > body.length * SNAPPY_MAX_RATIO + 64) {
    return corrupt('snappy', new Error(`its header declares ${declared} bytes, more than ${body.length} compressed bytes can hold`));
  }
  try {
    // Fluent Bit sends the raw snappy block format, whose header states the inflated length.
    const out = snappy.uncompress(body, max) as Buffer;
    return { ok: true, body: Buffer.from(out.buffer, out.byteOffset, out.byteLength) };
  } catch (err) {
    if (/too big/.test((err as Error).message)) return tooLarge('snappy', max);
    return corrupt('snappy', err);
  }
}

/** The snappy block header: the inflated length as a little-endian varint of at most 5 bytes. */
function snappyDeclaredLength(body: Buffer): number {
  let result = 0;
  for (let i = 0; i < 5 && i < body.length; i++) {
    const c = body[i]!;
    result += (c & 0x7f) * 2 ** (7 * i);
    if (c < 0x80) return result;
  }
  return -1;
}

/** A Content-Encoding header as it is matched and kept: trimmed, lower case ('' for none). */
export function normalizeEncoding(header: string | undefined): string {
  return (header ?? '').trim().toLowerCase();
}

/** Undo Fluent Bit's `compress` (Content-Encoding gzip, zstd or snappy; br), never past `max` bytes. */
export async function decompress(body: Buffer, encoding: string | undefined, max: number): Promise<Decompressed> {
  const enc = normalizeEncoding(encoding);
  switch (enc) {
    case '':
    case 'identity':
      return body.length > max ? tooLarge('identity', max) : { ok: true, body };
    case 'gzip':
    case 'x-gzip':
      return gunzipBounded(body, max);
    case 'zstd':
      return unzstdBounded(body, max);
    case 'snappy':
      return unsnappyBounded(body, max);
    case 'br':
      return unbrotliBounded(body, max);
    default:
      return {
        ok: false,
        error: { status: 415, reason: 'unsupported_encoding', message: `Content-Encoding "${enc}" is not supported (gzip, zstd, snappy, br or none)` },
      };
  }
}
