// CRC-32 (IEEE 802.3, the zlib polynomial) over KV chunks: cheap enough to run on every chunk, strong enough
// to catch truncation and corruption on the wire. zlib's native crc32 (Node ≥ 20.15 and Deno) runs at
// memory speed; the table version is the fallback for older runtimes.
import * as zlib from "node:zlib";

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

const crc32Table = (bytes: Uint8Array): number => {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
};

const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

export const crc32: (bytes: Uint8Array) => number = typeof native === "function" ? (bytes) => native(bytes) >>> 0 : crc32Table;
