/**
 * Where each top-level value of a msgpack body starts and ends, found from the type bytes and
 * lengths alone (no value is built). Decoders, msgpackr among them, allocate an array or map for
 * the element count its header declares before reading one element, so a few bytes of nested
 * headers declaring 65,535 elements each take gigabytes (msgpackr issues #199 and #200): the
 * process dies of heap exhaustion, which no try/catch catches. Here a container may not declare
 * more elements than the bytes left could hold (each element takes at least one byte), nor more
 * than `maxContainer`, and the body as a whole no more than `maxValues`, before any of it is
 * decoded.
 *
 * It also finds the events that hold a msgpack extension other than Fluent Bit's EventTime
 * (type 0). msgpackr gives meaning to many more (shared references and cycles, typed arrays,
 * Sets, Errors, Dates...): a few hundred bytes of references make a value every walk of which is
 * exponential, and a typed array is millions of elements in one value. Fluent Bit writes none of
 * them, so such an event is set aside whole, before msgpackr sees it.
 */

export interface MsgpackSpans {
  /** Where each sound top-level value ends, in order (each starts where the one before ends). */
  ends: number[];
  /** Where the first unsound or truncated value starts, and why; everything from there is bad. */
  unsound: { offset: number; reason: string } | null;
  /** The values declared in the body (every element of every container) passed maxValues. */
  tooManyValues: boolean;
  /** There are more than maxItems top-level values (the walk stopped there). */
  tooManyItems: boolean;
  /** The sound values that hold an extension other than EventTime: index into ends, and its type. */
  foreign: Array<{ index: number; extType: number }>;
}

/** The only msgpack extension Fluent Bit writes: EventTime. */
const EVENT_TIME_EXT = 0;

// Bytes that follow the type byte for fixed-size formats 0xc0..0xdf (-1: variable or container).
const FIXED = new Int8Array(32).fill(-1);
for (const [b, n] of [[0xc0, 0], [0xc2, 0], [0xc3, 0], [0xca, 4], [0xcb, 8], [0xcc, 1], [0xcd, 2], [0xce, 4], [0xcf, 8], [0xd0, 1], [0xd1, 2], [0xd2, 4], [0xd3, 8], [0xd4, 2], [0xd5, 3], [0xd6, 5], [0xd7, 9], [0xd8, 17]] as const) FIXED[b - 0xc0] = n;

export function msgpackSpans(body: Uint8Array, maxContainer: number, maxValues: number, maxItems: number): MsgpackSpans {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const len = body.length;
  const ends: number[] = [];
  const foreign: MsgpackSpans['foreign'] = [];
  let declared = 0;
  let pos = 0;
  while (pos < len) {
    if (ends.length >= maxItems) return { ends, unsound: null, tooManyValues: false, tooManyItems: true, foreign };
    const start = pos;
    let need = 1;
    let why: string | null = null;
    let foreignExt: number | null = null;
    while (need > 0) {
      if (pos >= len) {
        why = 'the value is cut short';
        break;
      }
      const b = body[pos++]!;
      need--;
      let skip = 0;
      // Entries of a container (array elements, map pairs) and the values they hold.
      let entries = 0;
      let elements = 0;
      if (b <= 0x7f || b >= 0xe0) {
        // positive or negative fixint
      } else if (b <= 0x8f) {
        entries = b & 0x0f;
        elements = entries * 2;
      } else if (b <= 0x9f) entries = elements = b & 0x0f;
      else if (b <= 0xbf) skip = b & 0x1f;
      else {
        const fixed = FIXED[b - 0xc0]!;
        if (fixed >= 0) {
          skip = fixed;
          // fixext 1..16: the type byte comes first (a cut-short one is found below).
          if (b >= 0xd4 && b <= 0xd8 && pos < len && foreignExt === null && body[pos] !== EVENT_TIME_EXT) foreignExt = (body[pos]! << 24) >> 24;
        } else {
          const width = b === 0xc4 || b === 0xc7 || b === 0xd9 ? 1 : b === 0xc5 || b === 0xc8 || b === 0xda || b === 0xdc || b === 0xde ? 2 : 4;
          if (b === 0xc1 || pos + width > len) {
            why = b === 0xc1 ? 'byte 0xc1 is never used in msgpack' : 'a length is cut short';
            break;
          }
          const n = width === 1 ? body[pos]! : width === 2 ? view.getUint16(pos) : view.getUint32(pos);
          pos += width;
          if (b === 0xdc || b === 0xdd) entries = elements = n;
          else if (b === 0xde || b === 0xdf) {
            entries = n;
            elements = n * 2;
          } else if (b >= 0xc7 && b <= 0xc9) {
            // ext 8/16/32: a type byte, then the data
            skip = n + 1;
            if (pos < len && foreignExt === null && body[pos] !== EVENT_TIME_EXT) foreignExt = (body[pos]! << 24) >> 24;
          } else skip = n;
        }
      }
      if (elements > 0) {
        if (entries > maxContainer) {
          why = `a container declares more than ${maxContainer} elements`;
          break;
        }
        need += elements;
        declared += elements;
        if (need > len - pos) {
          why = 'a container declares more elements than the bytes left could hold';
          break;
        }
      }
      pos += skip;
      if (pos > len) {
        why = 'a string, binary or extension is cut short';
        break;
      }
    }
    if (why) return { ends, unsound: { offset: start, reason: why }, tooManyValues: false, tooManyItems: false, foreign };
    if (declared > maxValues) return { ends, unsound: null, tooManyValues: true, tooManyItems: false, foreign };
    if (foreignExt !== null) foreign.push({ index: ends.length, extType: foreignExt });
    ends.push(pos);
  }
  return { ends, unsound: null, tooManyValues: false, tooManyItems: false, foreign };
}
