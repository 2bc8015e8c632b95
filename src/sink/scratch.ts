/**
 * Buffers that row writers fill and hand back once their rows are copied out. A writer lives for
 * one synchronous call (a request made into rows), so a few buffers serve every request: without
 * them each request grew its own from 64 KiB to a megabyte by doubling, and that external memory,
 * not the rows, was what made V8 run full collections.
 */
const free: Buffer[] = [];
const MAX_KEPT = 8;
const MAX_KEPT_BYTES = 4 * 1024 * 1024;

/** A buffer of at least `bytes`. */
export function takeScratch(bytes: number): Buffer {
  for (let i = free.length - 1; i >= 0; i--) {
    if (free[i]!.length >= bytes) return free.splice(i, 1)[0]!;
  }
  return Buffer.allocUnsafe(Math.max(bytes, 64 * 1024));
}

/** Give a buffer back; its contents are no longer read. */
export function returnScratch(buf: Buffer): void {
  if (buf.length > MAX_KEPT_BYTES) return;
  if (free.length >= MAX_KEPT) {
    // Keep the larger ones: they serve every request.
    let smallest = 0;
    for (let i = 1; i < free.length; i++) if (free[i]!.length < free[smallest]!.length) smallest = i;
    if (free[smallest]!.length >= buf.length) return;
    free.splice(smallest, 1);
  }
  free.push(buf);
}

/** `buf`'s first `used` bytes in a buffer of at least `need`, the old one given back. */
export function growScratch(buf: Buffer, used: number, need: number): Buffer {
  const grown = takeScratch(Math.max(need, buf.length * 2));
  buf.copy(grown, 0, 0, used);
  returnScratch(buf);
  return grown;
}
