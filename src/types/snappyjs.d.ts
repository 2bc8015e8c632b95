declare module 'snappyjs' {
  export function uncompress(compressed: Uint8Array | ArrayBuffer | Buffer, maxLength?: number): Uint8Array | ArrayBuffer | Buffer;
  export function compress(uncompressed: Uint8Array | ArrayBuffer | Buffer): Uint8Array | ArrayBuffer | Buffer;
  const snappy: { uncompress: typeof uncompress; compress: typeof compress };
  export default snappy;
}
