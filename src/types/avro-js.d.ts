// avro-js ships no types; only the parts hubble-adx uses are declared. Its package index requires
// an undeclared dependency (underscore) for a deprecated validator, so the modules are loaded directly.
declare module 'avro-js/lib/schemas.js' {
  export interface AvroType {
    toBuffer(value: unknown): Buffer;
    isValid(value: unknown): boolean;
    _write(tap: unknown, value: unknown): void;
    _check(value: unknown): boolean;
  }
  export function createType(schema: unknown, opts?: { typeHook?: (attrs: unknown, opts: unknown) => AvroType | undefined }): AvroType;
  export const types: {
    UnionType: new (attrs: unknown[], opts: unknown) => AvroType & { _types: AvroType[] };
  };
}
declare module 'avro-js/lib/files.js' {
  import type { Duplex } from 'node:stream';
  import type { AvroType } from 'avro-js/lib/schemas.js';
  export const streams: {
    BlockEncoder: new (schema: unknown, opts?: { codec?: string; blockSize?: number }) => Duplex;
    BlockDecoder: new (opts?: { decode?: boolean }) => Duplex;
  };
  export const HEADER_TYPE: AvroType;
  export const MAGIC_BYTES: Buffer;
}
declare module 'avro-js/lib/utils.js' {
  export class Tap {
    constructor(buf: Buffer, pos?: number);
    buf: Buffer;
    pos: number;
    isValid(): boolean;
  }
}
