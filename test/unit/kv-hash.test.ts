// The KV chunk checksum: the WebAssembly SIMD code equals a plain BigInt transcription of its definition
// (kv-hash-wat.ts) for every length and alignment, staged or hashed in place; and it catches what a wire
// checksum must — flipped bits, swapped stripes, a trailing zero byte.
import { createHash, randomFillSync } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashableBuffer, kvChecksum, kvHashKeys } from "../../src/kv/checksum/kv-hash.ts";
import { KV_HASH_WAT_SHA256 } from "../../src/kv/checksum/kv-hash-wasm.ts";
import {
  INITIAL_LANES,
  kvHashWat,
  PRIME32_1,
  PRIME64_1,
  PRIME64_2,
  PRIME64_3,
  PRIME64_4,
  STRIPE_KEY_BYTES,
} from "../../src/kv/checksum/kv-hash-wat.ts";

const M64 = (1n << 64n) - 1n;
const KEYS = new DataView(kvHashKeys().buffer);

/** The checksum, transcribed from its definition one 64-bit lane at a time. */
const reference = (bytes: Uint8Array): number => {
  const acc: bigint[] = [...INITIAL_LANES];
  const stripeCount = Math.ceil(bytes.length / 64);
  const padded = new Uint8Array(stripeCount * 64);
  padded.set(bytes);
  const data = new DataView(padded.buffer);
  for (let s = 0; s < stripeCount; s++) {
    for (let j = 0; j < 4; j++) {
      const at = 64 * s + 16 * j;
      const word = (i: number) => BigInt(data.getUint32(at + 4 * i, true));
      const key = (i: number) => word(i) ^ BigInt(KEYS.getUint32(64 * (s % 16) + 16 * j + 4 * i, true));
      acc[2 * j] = (acc[2 * j]! + key(0) * key(1) + (word(2) | (word(3) << 32n))) & M64;
      acc[2 * j + 1] = (acc[2 * j + 1]! + key(2) * key(3) + (word(0) | (word(1) << 32n))) & M64;
    }
    if ((s + 1) % 16 === 0) {
      for (let lane = 0; lane < 8; lane++) {
        const a = acc[lane]!;
        acc[lane] = ((a ^ (a >> 47n) ^ KEYS.getBigUint64(STRIPE_KEY_BYTES + 8 * lane, true)) * PRIME32_1) & M64;
      }
    }
  }
  const rotl31 = (x: bigint) => ((x << 31n) | (x >> 33n)) & M64;
  let h = (BigInt(bytes.length) * PRIME64_1) & M64;
  for (const lane of acc) h = (((h ^ ((rotl31((lane * PRIME64_2) & M64) * PRIME64_1) & M64)) * PRIME64_1 + PRIME64_4) & M64);
  h = ((h ^ (h >> 33n)) * PRIME64_2) & M64;
  h = ((h ^ (h >> 29n)) * PRIME64_3) & M64;
  h ^= h >> 32n;
  return Number(h & 0xffffffffn);
};

const random = (n: number) => randomFillSync(new Uint8Array(n));

describe("kvChecksum", () => {
  it("is built from the current WebAssembly text", () => {
    expect(createHash("sha256").update(kvHashWat()).digest("hex")).toBe(KV_HASH_WAT_SHA256);
  });

  it("gives the check values docs/protocol.md states", () => {
    expect(kvChecksum(new TextEncoder().encode("123456789"))).toBe(0x888a2d7b);
    expect(kvChecksum(new Uint8Array(0))).toBe(0xf420160a);
    expect(kvChecksum(Uint8Array.from({ length: 1024 }, (_, i) => i & 255))).toBe(0x3e774db5);
  });

  it("equals its definition for every length up to 2 KiB and beyond the 16-stripe scramble", () => {
    for (const n of [...Array.from({ length: 2049 }, (_, i) => i), 4095, 4096, 4097, 70_000]) {
      const bytes = random(n);
      expect(kvChecksum(bytes), `length ${n}`).toBe(reference(bytes));
    }
  });

  it("equals its definition at any alignment, across the 64 KiB stage, and hashed in place", () => {
    const big = random(300_000);
    for (const [from, to] of [[1, 200_001], [3, 65_539], [64, 131_136], [0, 300_000]] as const) {
      const view = big.subarray(from, to);
      const expected = reference(view);
      expect(kvChecksum(view)).toBe(expected);
      const hashable = hashableBuffer(to - from + 5);
      hashable.set(view, 5);
      expect(kvChecksum(hashable.subarray(5, 5 + view.length))).toBe(expected);
    }
  });

  it("does not touch bytes around a chunk hashed in place", () => {
    const hashable = hashableBuffer(1000);
    hashable.set(random(1000));
    const before = hashable.slice();
    kvChecksum(hashable.subarray(10, 110)); // 100 bytes: a partial last stripe
    expect(Buffer.compare(hashable, before)).toBe(0);
  });

  it("changes when one or two bits flip anywhere", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.nat(), fc.nat(), fc.boolean(), (n, a, b, two) => {
        const bytes = random(n);
        const before = kvChecksum(bytes);
        bytes[a % n]! ^= 1 << (a % 8);
        if (two && b % n !== a % n) bytes[b % n]! ^= 1 << (b % 8);
        return kvChecksum(bytes) !== before;
      }),
      { numRuns: 2000 },
    );
  });

  it("the same bit flipped in two words of one lane, 1..15 stripes apart, changes it", () => {
    const bytes = random(1024);
    const before = kvChecksum(bytes);
    for (let apart = 1; apart < 16; apart++) {
      const copy = bytes.slice();
      copy[0]! ^= 0x80;
      copy[64 * apart]! ^= 0x80;
      expect(kvChecksum(copy)).not.toBe(before);
    }
  });

  it("changes when stripes are swapped (also 16 apart: same keys) or a zero byte is appended", () => {
    const bytes = random(64 * 40);
    const before = kvChecksum(bytes);
    for (const [x, y] of [[0, 1], [3, 19], [0, 32]] as const) {
      const swapped = bytes.slice();
      swapped.set(bytes.subarray(64 * y, 64 * y + 64), 64 * x);
      swapped.set(bytes.subarray(64 * x, 64 * x + 64), 64 * y);
      expect(kvChecksum(swapped)).not.toBe(before);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(kvChecksum(longer)).not.toBe(before);
    expect(kvChecksum(new Uint8Array(0))).not.toBe(kvChecksum(new Uint8Array(1)));
  });
});
