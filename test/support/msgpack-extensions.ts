/**
 * msgpack bodies that use msgpackr's default extensions: a record holding shared references
 * (0x69 id / 0x70 pointer, msgpackr's structured-clone extensions, which the receiver's
 * Unpackr leaves enabled). A few hundred bytes decode into a value whose every walk is
 * exponential (a DAG of `levels` levels, each the previous one twice), or a cycle.
 */

const str = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 31) throw new Error('short strings only');
  return Buffer.concat([Buffer.from([0xa0 | b.length]), b]);
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};
const defineId = (id: number) => Buffer.concat([Buffer.from([0xd6, 0x69]), u32(id)]);
const pointTo = (id: number) => Buffer.concat([Buffer.from([0xd6, 0x70]), u32(id)]);

/** An array of `levels + 1` elements: level 0 is [1], level k is [level k-1, level k-1] (shared). */
export function dagArray(levels: number): Buffer {
  const parts: Buffer[] = [Buffer.from([0xdc]), Buffer.from([(levels + 1) >> 8, (levels + 1) & 0xff])];
  parts.push(defineId(1), Buffer.from([0x91, 0x01]));
  for (let k = 1; k <= levels; k++) parts.push(defineId(k + 1), Buffer.from([0x92]), pointTo(k), pointTo(k));
  return Buffer.concat(parts);
}

/** An array that holds itself. */
export function cyclicArray(): Buffer {
  return Buffer.concat([defineId(1), Buffer.from([0x91]), pointTo(1)]);
}

/** A map of short string keys to raw msgpack values. */
function map(entries: [string, Buffer][]): Buffer {
  return Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flatMap(([k, v]) => [str(k), v])]);
}

/**
 * One Fluent Bit event (older form: [time, record]) whose record is a merged exporter record
 * `{flow: {uuid, verdict, <extra>: value}}`: the flow is read, and `extra` is kept in AdditionalFlowData.
 */
export function flowEvent(uuid: string, extra: Buffer, time = 1_795_161_600): Buffer {
  const flow = map([
    ['uuid', str(uuid)],
    ['verdict', str('DROPPED')],
    ['node_name', str('attacker')],
    ['extra', extra],
  ]);
  return Buffer.concat([Buffer.from([0x92, 0xce]), u32(time), map([['flow', flow]])]);
}

/** The body: the hostile event, then `plain` ordinary events given as raw msgpack. */
export function bodyWith(extra: Buffer, plain: Buffer[] = []): Buffer {
  return Buffer.concat([flowEvent('dag-0', extra), ...plain]);
}

/** A typed array (msgpackr extension 0x74): one msgpack value however many elements it holds. */
export function typedArray(bytes: number, typeCode = 1): Buffer {
  const head = Buffer.alloc(6);
  head[0] = 0xc9;
  head.writeUInt32BE(bytes + 1, 1);
  head[5] = 0x74;
  const data = Buffer.alloc(bytes + 1, 0x61);
  data[0] = typeCode;
  return Buffer.concat([head, data]);
}
