// The KV chunk checksum: the WebAssembly SIMD code equals a plain BigInt transcription of its definition
// (kv-hash-wat.ts) for every length and alignment, staged or hashed in place; and it catches what a wire
// checksum must — flipped bits, swapped stripes, a trailing zero byte.
import { createHash, randomFillSync } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hashableBuffer, kvChecksum, kvHashKeys } from "../../src/kv/checksum/kv-hash.ts";
import { KV_HASH_WAT_SHA256 } from "../../src/kv/checksum/kv-hash-wasm.ts";
import { kvHashWat, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4 } from "../../src/kv/checksum/kv-hash-wat.ts";

const M64 = (1n << 64n) - 1n;
const KEYS = new DataView(kvHashKeys().buffer);
const u32 = (x: number) => x >>> 0;
const i16 = (x: number) => (x << 16) >> 16;

/** The checksum, transcribed from its definition one 32-bit lane at a time. */
const reference = (bytes: Uint8Array): number => {
  // p[j][i], d[j][i]: lane j's accumulators, 32-bit word i.
  const p = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
  const d = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
  const stripeCount = Math.ceil(bytes.length / 64);
  const padded = new Uint8Array(stripeCount * 64);
  padded.set(bytes);
  const data = new DataView(padded.buffer);
  for (let s = 0; s < stripeCount; s++) {
    const key = 128 * (s % 16);
    for (let j = 0; j < 4; j++) {
      for (let i = 0; i < 4; i++) {
        const at = 64 * s + 16 * j + 4 * i;
        const word = data.getUint32(at, true);
        const a = word ^ s ^ KEYS.getUint32(key + 16 * j + 4 * i, true);
        const b = word ^ KEYS.getUint32(key + 64 + 16 * j + 4 * i, true);
        // Two signed 16-bit products, summed, mod 2^32.
        const dot = i16(a) * i16(b) + i16(a >>> 16) * i16(b >>> 16);
        p[j]![i] = u32(p[j]![i]! + dot);
        d[j]![i] = u32(d[j]![i]! + word);
      }
    }
  }
  const rotl31 = (x: bigint) => ((x << 31n) | (x >> 33n)) & M64;
  let h = (BigInt(bytes.length) * PRIME64_1) & M64;
  for (let j = 0; j < 4; j++) {
    for (let i = 0; i < 4; i++) {
      const w = BigInt(p[j]![i]!) | (BigInt(d[j]![i]!) << 32n);
      h = ((h ^ ((rotl31((w * PRIME64_2) & M64) * PRIME64_1) & M64)) * PRIME64_1 + PRIME64_4) & M64;
    }
  }
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
    expect(kvChecksum(new TextEncoder().encode("123456789"))).toBe(0xe283750f);
    expect(kvChecksum(new Uint8Array(0))).toBe(0xefe915cb);
    expect(kvChecksum(Uint8Array.from({ length: 1024 }, (_, i) => i & 255))).toBe(0x97a55e11);
  });

  it("equals its definition for every length up to 2 KiB and past 16 stripes (where the keys repeat)", () => {
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

  it("the same bit flipped in two words of one lane, 1..47 stripes apart (also 16 and 32: same keys), changes it", () => {
    const bytes = random(64 * 48);
    const before = kvChecksum(bytes);
    for (let apart = 1; apart < 48; apart++) {
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
