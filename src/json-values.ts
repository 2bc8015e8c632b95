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
