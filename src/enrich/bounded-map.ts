/**
 * A Map bounded in entries and in bytes (as `sizeOf` measures each value), for state keyed by
 * values that come from input. Past either bound the oldest entries (in order of their last
 * `set`) are dropped; `evicted` counts them so that a metric can say when the cap is hit.
 */
/** The bounds of a BoundedMap. */
export interface BoundedMapLimits {
  maxEntries: number;
  maxBytes: number;
}

export class BoundedMap<K, V> {
  private readonly map = new Map<K, { value: V; bytes: number }>();
  private totalBytes = 0;
  evicted = 0;

  constructor(
    private readonly limits: BoundedMapLimits,
    private readonly sizeOf: (v: V) => number,
  ) {}

  get(k: K): V | undefined {
    return this.map.get(k)?.value;
  }

  /** Store (as the newest entry), then drop the oldest entries past the bounds. */
  set(k: K, value: V): void {
    this.delete(k);
    const bytes = this.sizeOf(value);
    this.map.set(k, { value, bytes });
    this.totalBytes += bytes;
    while (this.map.size > this.limits.maxEntries || (this.totalBytes > this.limits.maxBytes && this.map.size > 1)) {
      const oldest = this.map.keys().next().value as K;
      this.delete(oldest);
      this.evicted++;
    }
  }

  delete(k: K): boolean {
    const e = this.map.get(k);
    if (!e) return false;
    this.map.delete(k);
    this.totalBytes -= e.bytes;
    return true;
  }
}

/** Approximate bytes held by a labels array (strings as their length, anything else as 16). */
export function labelsBytes(labels: readonly unknown[]): number {
  let n = 16 + labels.length * 8;
  for (const l of labels) n += typeof l === 'string' ? l.length : 16;
  return n;
}
