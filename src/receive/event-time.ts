import { addExtension } from 'msgpackr';

/**
 * Fluent Bit's EventTime: msgpack ext type 0 holding uint32 seconds and uint32 nanoseconds,
 * big-endian. Registered once with msgpackr for decoding (msgpackr refuses to register an encoder
 * for type 0, and hubble-adx never encodes one).
 */
export class EventTime {
  constructor(readonly seconds: number, readonly nanoseconds: number) {}
  toSeconds(): number {
    return this.seconds + this.nanoseconds / 1e9;
  }
}

addExtension({
  type: 0,
  unpack(buf: Buffer) {
    if (buf.length !== 8) throw new Error(`EventTime extension must be 8 bytes, got ${buf.length}`);
    return new EventTime(buf.readUInt32BE(0), buf.readUInt32BE(4));
  },
});
