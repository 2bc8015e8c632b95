/**
 * Numbers read out of a record, checked where they are read. Every count and number Hubble writes
 * is an unsigned integer (protojson: a number, or a decimal string for 64-bit ones); a value of
 * the wrong sign, size or type cannot be a real one, and once in a row it would skew what is summed
 * from it (a negative lost-event count cancels a real one, a huge FlowCount claims flows that never
 * were). Such a record is refused whole, as a dead letter naming the field.
 */

/** Bounds, by what the field can hold in Cilium's flow.proto and in its column. */
export const MAX = {
  /** A port (TCP, UDP, SCTP, the proxy's). */
  port: 65_535,
  /** An ICMP type or code: one byte on the wire. */
  byte: 255,
  /** An HTTP status: three digits. */
  httpStatus: 999,
  /** A DNS rcode, extended ones included. */
  dnsRcode: 65_535,
  /** uint32 in flow.proto: identities, TTLs, Cilium's aggregate counts. */
  uint32: 4_294_967_295,
  /** What an int column holds: drop reasons, event types. */
  int32: 2_147_483_647,
  /** uint64 in flow.proto that is not a count (a latency, a policy revision): what a long column holds exactly. */
  uint64: Number.MAX_SAFE_INTEGER,
  /**
   * What one record may claim to count (Hubble's lost events in one report, the flows of one
   * aggregated flow): a uint32, so that a coverage window summing two million of them stays exact.
   */
  count: 4_294_967_295,
} as const;

/** A value of a record that cannot be what its field holds: the record is dead-lettered with this reason. */
export class InvalidValue extends Error {
  readonly reason = 'invalid_value';
  constructor(
    /** The field's path in the exporter record, e.g. `flow.l4.TCP.source_port`. */
    readonly field: string,
    why: string,
  ) {
    // A field named by a key of the record (l4's protocol) is cut: the message is bounded.
    super(`${field.length > 200 ? `${field.slice(0, 200)}...` : field} ${why}`);
    this.name = 'InvalidValue';
  }
}

const DIGITS = /^[0-9]+$/;

/**
 * A non-negative integer of at most `max`, from a number or a decimal string (protojson's uint64);
 * null when the field is absent (null or undefined). Anything else throws InvalidValue.
 */
export function count(v: unknown, field: string, max: number): number | null {
  if (v === undefined || v === null) return null;
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && DIGITS.test(v)) {
    if (v.length > 16) throw new InvalidValue(field, `is over its bound of ${max} (${v.length} digits)`);
    n = Number(v);
  } else throw new InvalidValue(field, `is not a non-negative integer (a ${describe(v)})`);
  if (n > max) throw new InvalidValue(field, `is over its bound of ${max} (${n})`);
  if (!Number.isInteger(n) || n < 0) throw new InvalidValue(field, `is not a non-negative integer (${n})`);
  return n;
}

/** What a value is, for a message: never its text (which may be anything), only its kind. */
export function describe(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length === 0 ? 'empty string' : 'string that is not a decimal integer';
  return typeof v === 'object' ? 'map' : typeof v;
}
