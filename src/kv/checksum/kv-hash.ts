// The checksum of a KV chunk on the wire: 32 bits from a WebAssembly SIMD hash (kv-hash-wat.ts describes the
// loop) that runs at several times the speed of CRC-32. zlib's CRC-32 ran at ~7 GB/s on this machine at best
// and 2–4 GB/s under load: on a loopback transfer the receiver's CRC pass alone cost about a third of the
// raw socket's time, the first thing between the TCP channel and its 0.8× target (docs/kv.md).
//
// Bytes in wasm memory that has the hash's keys — a payload from `hashableBuffer` — are hashed where they lie;
// any other bytes are copied through a 64 KiB stage first (one cache-resident memmove per piece).
//
// It detects corruption with probability 1 − 2⁻³² for random errors; unlike CRC-32 it guarantees nothing for
// short bursts specifically, and it is not a cryptographic MAC (nor was CRC-32).
import { compileBase64, instantiate, wasmMemory } from "../wasm-api.ts";
import { KV_HASH_WASM_BASE64 } from "./kv-hash-wasm.ts";
import { KEY_BYTES, KEYS_AT } from "./kv-hash-wat.ts";

interface Exports {
  readonly reset: () => void;
  readonly update: (at: number, bytes: number) => void;
  readonly finish: (total: number) => number;
}

const STRIPE = 64;
/**
 * Where a hashable payload starts in its memory: after the keys, at 0x400 into a 4 KiB page (a memmove whose
 * source and destination share a page offset ran ~10× slower on this AMD EPYC, and most buffers start on one).
 */
const PAYLOAD_AT = 0x1400;
const STAGE_BYTES = 0x10000;
/** One stripe between the keys and the payload, where a zero-padded last partial stripe is hashed. */
const SCRATCH_AT = 0x800;

/** The keys: splitmix64 from a fixed seed, little-endian. Part of the checksum's definition. */
export const kvHashKeys = (): Uint8Array => {
  const keys = new Uint8Array(KEY_BYTES);
  const view = new DataView(keys.buffer);
  const mask = (1n << 64n) - 1n;
  let state = 0x54616e64656d4b56n; // "TandemKV"
  for (let at = 0; at < KEY_BYTES; at += 8) {
    state = (state + 0x9e3779b97f4a7c15n) & mask;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    view.setBigUint64(at, z ^ (z >> 31n), true);
  }
  return keys;
};

const module = compileBase64(KV_HASH_WASM_BASE64);
const KEYS = kvHashKeys();

interface Hasher {
  readonly exports: Exports;
  readonly heap: Uint8Array;
}

const hasherOver = (bytes: number): Hasher => {
  const memory = wasmMemory(bytes);
  const heap = new Uint8Array(memory.buffer);
  heap.set(KEYS, KEYS_AT);
  return { exports: instantiate<Exports>(module, { env: { memory } }), heap };
};

/** Hashers of the memories behind `hashableBuffer` payloads, by their ArrayBuffer. */
const inPlace = new WeakMap<ArrayBufferLike, Hasher>();
const staged = hasherOver(PAYLOAD_AT + STAGE_BYTES);

/**
 * A buffer of `bytes` bytes whose checksum is computed where it lies: a view at PAYLOAD_AT into its own wasm
 * memory (contents zero). For receive buffers, which are hashed once per transfer and reused (kv-payload-pool.ts).
 */
export const hashableBuffer = (bytes: number): Uint8Array => {
  const hasher = hasherOver(PAYLOAD_AT + bytes);
  inPlace.set(hasher.heap.buffer, hasher);
  return hasher.heap.subarray(PAYLOAD_AT, PAYLOAD_AT + bytes);
};

/** The 32-bit checksum of `bytes` (unsigned). */
export const kvChecksum = (bytes: Uint8Array): number => {
  const own = inPlace.get(bytes.buffer);
  const { exports, heap } = own ?? staged;
  exports.reset();
  const whole = bytes.length - (bytes.length % STRIPE);
  if (own !== undefined) exports.update(bytes.byteOffset, whole);
  else {
    for (let at = 0; at < whole; at += STAGE_BYTES) {
      const piece = Math.min(STAGE_BYTES, whole - at);
      heap.set(bytes.subarray(at, at + piece), PAYLOAD_AT);
      exports.update(PAYLOAD_AT, piece);
    }
  }
  if (whole < bytes.length) {
    // The last partial stripe, zero-padded in the memory's scratch stripe (the total length passed to `finish`
    // tells "ab" from "ab\0").
    heap.fill(0, SCRATCH_AT, SCRATCH_AT + STRIPE);
    heap.set(bytes.subarray(whole), SCRATCH_AT);
    exports.update(SCRATCH_AT, STRIPE);
  }
  return exports.finish(bytes.length) >>> 0;
};
