import { decodeJson } from './decode-json.js';
import { decodeMsgpack } from './decode-msgpack.js';
import { decompress } from './decompress.js';
import type { BodyError, BodyFormat, Decoded } from './types.js';

export interface BodyLimits {
  maxDecompressedBytes: number;
  maxRecordsPerRequest: number;
  maxRecordBytes: number;
  maxValuesPerRequest: number;
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
  return parseBody(inflated.body, format, limits, jsonDateKey);
}

/** Decode an inflated body into records; limits are enforced while the work is done, not after. */
export function parseBody(raw: Buffer, format: BodyFormat, limits: BodyLimits, jsonDateKey: string): BodyResult {
  const max = limits.maxRecordsPerRequest;
  const text = format === 'msgpack' ? null : raw.toString('utf8');
  // What a body declares costs memory before it is records: every object, array and value of it.
  if (text !== null && containersExceed(text, limits.maxValuesPerRequest)) return tooManyValues(limits.maxValuesPerRequest);
  const decoded =
    text === null
      ? decodeMsgpack(raw, { maxItems: max, maxValues: limits.maxValuesPerRequest, maxEventBytes: limits.maxRecordBytes })
      : decodeJson(text, jsonDateKey, format === 'json_lines', max, limits.maxRecordBytes);
  if ('tooMany' in decoded) {
    if (decoded.tooMany === 'values') return tooManyValues(limits.maxValuesPerRequest);
    return {
      ok: false,
      error: { status: 413, reason: 'too_many_records', message: `the body holds more than limits.maxRecordsPerRequest (${max}) records` },
    };
  }
  return { ok: true, decoded, inflatedBytes: raw.length };
}

function tooManyValues(max: number): BodyResult {
  return { ok: false, error: { status: 413, reason: 'too_many_values', message: `the body declares more than limits.maxValuesPerRequest (${max}) objects and arrays` } };
}

/**
 * Whether JSON text holds more than `max` objects and arrays, counted from the brackets that open
 * them (those inside strings too, so it can only overcount). indexOf runs natively: far cheaper
 * than the parse it protects.
 */
function containersExceed(text: string, max: number): boolean {
  let n = 0;
  for (const open of ['{', '[']) {
    for (let i = text.indexOf(open); i >= 0; i = text.indexOf(open, i + 1)) if (++n > max) return true;
  }
  return false;
}
