import type { FlowRow } from '../schema/index.js';

/** Verdicts that may be sampled: denied, audited and failed flows are always kept whole. */
const SAMPLED_VERDICTS = new Set(['FORWARDED', 'REDIRECTED', 'TRACED', 'TRANSLATED']);

/** FNV-1a over a string: cheap, stable across processes and versions (unlike a seeded hash). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * 1-in-N sampling of allowed flows by a hash of the connection's 5-tuple, the two endpoints put in
 * a fixed order so that both directions of a connection (and every node that sees it) keep or drop
 * it whole. A kept row carries SamplingWeight N so that counts stay estimable.
 */
export class Sampler {
  constructor(private readonly oneIn: number) {}

  keep(row: FlowRow): boolean {
    if (this.oneIn <= 1 || row.Verdict === null || !SAMPLED_VERDICTS.has(row.Verdict)) return true;
    const a = `${row.SourceIp ?? ''}:${row.SourcePort ?? ''}`;
    const b = `${row.DestinationIp ?? ''}:${row.DestinationPort ?? ''}`;
    const key = a < b ? `${a}|${b}|${row.Protocol ?? ''}` : `${b}|${a}|${row.Protocol ?? ''}`;
    if (fnv1a(key) % this.oneIn !== 0) return false;
    row.SamplingWeight = this.oneIn;
    return true;
  }
}
