/**
 * Bodies inflated at once. A body takes its decode turn (InflightBytes) once its inflated size is
 * known, so inflating comes first; without a bound of its own, 48 bodies of 275 bytes of zstd (or
 * 8 KB of gzip whose trailer lies about its size) inflated together to 745 MiB. A body waits here
 * for a slot, holding only what it was sent.
 */
export class InflationSlots {
  private busy = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly slots: number) {}

  /** Resolves with the release of a slot. */
  take(): Promise<() => void> {
    if (this.busy < this.slots) return Promise.resolve(this.grant());
    return new Promise((resolve) => this.queue.push(() => resolve(this.grant())));
  }

  private grant(): () => void {
    this.busy++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.busy--;
      this.queue.shift()?.();
    };
  }
}
