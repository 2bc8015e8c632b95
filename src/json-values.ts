/**
 * Reading values out of parsed JSON/msgpack without trusting their types. Protojson omits zero
 * values and writes 64-bit integers as strings, so absent, empty and numeric-string cases matter.
 */

export type JsonMap = Record<string, unknown>;

export const isMap = (v: unknown): v is JsonMap => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A non-empty string, or null. */
export const nonEmpty = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

/** A number from a number or a numeric string (uint64 in protojson), or null. */
export function toNumber(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.length > 0) {
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

/**
 * JSON text of a value that came from a request, for a dead letter: a value nested deeper than
 * JSON.stringify's recursion can go (it throws RangeError) is described instead of crashing.
 */
export function boundedJson(v: unknown, replacer?: (this: unknown, key: string, value: unknown) => unknown): string {
  try {
    return JSON.stringify(v, replacer) ?? '';
  } catch (err) {
    return `[value not serializable: ${(err as Error).message}]`;
  }
}
