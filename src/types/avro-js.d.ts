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
  export const streams: {
    BlockEncoder: new (schema: unknown, opts?: { codec?: string; blockSize?: number }) => Duplex;
  };
}
