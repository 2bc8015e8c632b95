import { frameJsonObjects } from './json-framing.js';
import type { Decoded, TooMany } from './types.js';
import { isMap } from '../json-values.js';


/**
 * Fluent Bit's json date key in any `json_date_format`: double (default) and epoch are seconds,
 * epoch_ms milliseconds, iso8601 and java_sql_timestamp text.
 */
export function dateKeyToSeconds(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v > 1e11 ? v / 1000 : v;
  if (typeof v === 'string' && v.length >= 10) {
    // java_sql_timestamp is "YYYY-MM-DD HH:MM:SS.ffffff" in UTC, without a zone designator
    const iso = v.charCodeAt(10) === 0x20 ? `${v.slice(0, 10)}T${v.slice(11)}Z` : v;
    const ms = Date.parse(iso);
    return Number.isNaN(ms) ? null : ms / 1000;
  }
  return null;
}

/** Every record is at least `{}` and a separator: a body of n bytes holds at most n / 3 of them. */
const MIN_RECORD_BYTES = 3;

/**
 * Decode `Format json` (an array of records), `json_stream` (objects back to back) and
 * `json_lines` (one per line) alike. A record that fails to parse is set aside on its own.
 * Stops at the `maxItems`-th item (records and bad parts together): the caller refuses the body.
 */
export function decodeJson(text: string, dateKey: string, lineDelimited: boolean, maxItems: number, maxRecordBytes: number): Decoded | TooMany {
  const out: Decoded = { records: [], bad: [] };
  let items = 0;
  if (lineDelimited) {
    // json_lines: a broken line must not swallow the lines after it, so each line stands alone.
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      const line = text.slice(start, end).trim();
      start = end + 1;
      if (line.length === 0) continue;
      if (++items > maxItems) return { tooMany: 'records' };
      parseOne(out, line, dateKey, maxRecordBytes);
    }
    return out;
  }
  // Fast path: a well-formed array is parsed natively in one go, when it cannot hold more records
  // than the limit (else the framing below counts them and stops at the limit).
  if (text.charCodeAt(0) === 0x5b /* [ */ && text.length <= maxItems * MIN_RECORD_BYTES) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch {
      arr = undefined;
    }
    if (Array.isArray(arr)) {
      if (arr.length > maxItems) return { tooMany: 'records' };
      for (const rec of arr) pushRecord(out, rec, null, dateKey, text);
      return out;
    }
  }
  frameJsonObjects(
    text,
    (json) => {
      if (++items > maxItems) return false;
      parseOne(out, json, dateKey, maxRecordBytes);
      return true;
    },
    (garbage) => {
      if (++items > maxItems) return false;
      out.bad.push({ reason: 'invalid_json', message: 'text between records is not JSON', raw: garbage });
      return true;
    },
  );
  return items > maxItems ? { tooMany: 'records' } : out;
}

function parseOne(out: Decoded, json: string, dateKey: string, maxRecordBytes: number): void {
  if (json.length > maxRecordBytes) {
    out.bad.push({ reason: 'record_too_large', message: `a ${json.length}-character record exceeds limits.maxRecordBytes (${maxRecordBytes}); not parsed`, raw: json });
    return;
  }
  let rec: unknown;
  try {
    rec = JSON.parse(json);
  } catch (err) {
    out.bad.push({ reason: 'invalid_json', message: `record is not valid JSON: ${(err as Error).message}`, raw: json });
    return;
  }
  pushRecord(out, rec, json, dateKey, json);
}

/**
 * `json`: the record's own text when there is one, kept as it came if the record is refused;
 * `around`: the text it is part of, kept instead when the record cannot be serialized again.
 */
function pushRecord(out: Decoded, rec: unknown, json: string | null, dateKey: string, around: string): void {
  if (!isMap(rec)) {
    let raw = json;
    if (raw === null) {
      try {
        raw = JSON.stringify(rec) ?? '';
      } catch {
        raw = around;
      }
    }
    out.bad.push({ reason: 'invalid_record', message: 'a record must be a JSON object', raw });
    return;
  }
  out.records.push({ record: rec, timeSec: dateKeyToSeconds(rec[dateKey]) });
}
