/**
 * Reading values out of parsed JSON/msgpack without trusting their types. Protojson omits zero
 * values and writes 64-bit integers as strings, so absent, empty and numeric-string cases matter.
 */

export type JsonMap = Record<string, unknown>;

/**
 * A record map: a plain object as JSON.parse and the msgpack decoder make them, or one made without
 * a prototype. Never Object.prototype itself (a key `__proto__` must not lead there), nor an array,
 * a Buffer, an EventTime or any other object with a class of its own.
 */
export function isMap(v: unknown): v is JsonMap {
  if (typeof v !== 'object' || v === null || v === Object.prototype) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A map whose keys come from input: no prototype, so `__proto__`, `constructor` and `prototype` are keys like any other. */
export function dataMap<V = unknown>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}

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
