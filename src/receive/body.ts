import { decodeJson } from './decode-json.js';
import { decodeMsgpack } from './decode-msgpack.js';
import { decompress } from './decompress.js';
import type { BodyError, BodyFormat, Decoded } from './types.js';

export interface BodyLimits {
  maxDecompressedBytes: number;
  maxRecordsPerRequest: number;
}

/** The body format from Content-Type, as Fluent Bit's http output sets it for each `Format`. */
export function formatOf(contentType: string | undefined): BodyFormat | null {
  const ct = (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  switch (ct) {
    case 'application/msgpack':
    case 'application/x-msgpack':
    case 'application/vnd.msgpack':
      return 'msgpack';
    case 'application/json': // Format json (array) and json_stream (objects back to back)
      return 'json';
    case 'application/x-ndjson':
    case 'application/jsonlines':
    case 'application/json-lines':
    case 'application/jsonl':
      return 'json_lines';
    default:
      return null;
  }
}

export type BodyResult = { ok: true; decoded: Decoded; inflatedBytes: number } | { ok: false; error: BodyError };

/** Decompress and decode one request body; limits are enforced while the work is done, not after. */
export async function decodeBody(
  body: Buffer,
  format: BodyFormat,
  contentEncoding: string | undefined,
  limits: BodyLimits,
  jsonDateKey: string,
): Promise<BodyResult> {
  const inflated = await decompress(body, contentEncoding, limits.maxDecompressedBytes);
  if (!inflated.ok) return inflated;
  const raw = inflated.body;
  const max = limits.maxRecordsPerRequest;
  const decoded = format === 'msgpack' ? decodeMsgpack(raw, max) : decodeJson(raw.toString('utf8'), jsonDateKey, format === 'json_lines', max);
  if ('tooMany' in decoded) {
    return {
      ok: false,
      error: { status: 413, reason: 'too_many_records', message: `the body holds more than limits.maxRecordsPerRequest (${max}) records` },
    };
  }
  return { ok: true, decoded, inflatedBytes: raw.length };
}
