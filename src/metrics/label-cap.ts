/**
 * A label whose values come from input (a node name, a lost-event source) would let a sender grow
 * a metric's series without bound. The first `max` distinct values are kept as they are; later
 * ones are reported as `_other`, and `onCapped` is told so that the cap shows in the metrics.
 */
export class LabelCap {
  private readonly seen = new Set<string>();

  constructor(
    private readonly max: number,
    private readonly onCapped: () => void,
  ) {}

  value(v: string): string {
    if (this.seen.has(v)) return v;
    if (this.seen.size < this.max) {
      this.seen.add(v);
      return v;
    }
    this.onCapped();
    return OTHER;
  }
}

export const OTHER = '_other';
