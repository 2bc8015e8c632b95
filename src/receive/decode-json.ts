import { frameJsonObjects } from './json-framing.js';
import type { Decoded } from './types.js';
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

/**
 * Decode `Format json` (an array of records), `json_stream` (objects back to back) and
 * `json_lines` (one per line) alike. A record that fails to parse is set aside on its own.
 */
export function decodeJson(text: string, dateKey: string, lineDelimited: boolean): Decoded {
  const out: Decoded = { records: [], bad: [] };
  if (lineDelimited) {
    // json_lines: a broken line must not swallow the lines after it, so each line stands alone.
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      const line = text.slice(start, end).trim();
      start = end + 1;
      if (line.length === 0) continue;
      parseOne(out, line, dateKey);
    }
    return out;
  }
  // Fast path: a well-formed array is parsed natively in one go.
  if (text.charCodeAt(0) === 0x5b /* [ */) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch {
      arr = undefined;
    }
    if (Array.isArray(arr)) {
      for (const rec of arr) pushRecord(out, rec, dateKey);
      return out;
    }
  }
  frameJsonObjects(
    text,
    (json) => parseOne(out, json, dateKey),
    (garbage) => out.bad.push({ reason: 'invalid_json', message: 'text between records is not JSON', raw: garbage }),
  );
  return out;
}

function parseOne(out: Decoded, json: string, dateKey: string): void {
  let rec: unknown;
  try {
    rec = JSON.parse(json);
  } catch (err) {
    out.bad.push({ reason: 'invalid_json', message: `record is not valid JSON: ${(err as Error).message}`, raw: json });
    return;
  }
  pushRecord(out, rec, dateKey);
}

function pushRecord(out: Decoded, rec: unknown, dateKey: string): void {
  if (!isMap(rec)) {
    out.bad.push({ reason: 'invalid_record', message: 'a record must be a JSON object', raw: JSON.stringify(rec) ?? '' });
    return;
  }
  out.records.push({ record: rec, timeSec: dateKeyToSeconds(rec[dateKey]) });
}
