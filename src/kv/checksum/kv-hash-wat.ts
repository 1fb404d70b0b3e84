// The WebAssembly text of the KV chunk checksum (see kv-hash.ts for what it is and why), compiled by
// `npx tsx src/kv/kernels/wasm/build.ts` into kv-hash-wasm.ts. The module imports its memory, which holds the
// secret (KEYS_AT) and the bytes to hash; its state is four i64x2 accumulators and a stripe counter in globals.
//
//   reset()              starts a new hash
//   update(at, bytes)    hashes `bytes` (a multiple of 64) from address `at`, 64-byte stripe by stripe
//   finish(total) → i32  folds the accumulators with the total length (an f64) into the 32-bit checksum
//
// Per stripe and 16-byte lane j: k = data ^ key[stripe mod 16][j]; acc_j += lo32(k)·hi32(k) (two 64-bit
// products) + data with its 64-bit halves swapped. After every 16th stripe each accumulator is scrambled:
// acc = (acc ^ acc >> 47 ^ scrambleKey_j) · PRIME32_1. This is XXH3's accumulate/scramble loop; the keys and the
// final fold are Tandem's, so the result is not an XXH3 value.

/** Byte address of the 16 × 64 stripe keys; the 4 × 16 scramble keys follow them. */
export const KEYS_AT = 0;
export const STRIPE_KEY_BYTES = 1024;
export const SCRAMBLE_KEY_BYTES = 64;

export const PRIME32_1 = 0x9e3779b1n;
export const PRIME32_2 = 0x85ebca77n;
export const PRIME32_3 = 0xc2b2ae3dn;
export const PRIME64_1 = 0x9e3779b185ebca87n;
export const PRIME64_2 = 0xc2b2ae3d27d4eb4fn;
export const PRIME64_3 = 0x165667b19e3779f9n;
export const PRIME64_4 = 0x85ebca77c2b2ae63n;
export const PRIME64_5 = 0x27d4eb2f165667c5n;

/** The accumulators' starting lanes (as XXH3's). */
export const INITIAL_LANES = [PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1] as const;

const hex = (x: bigint) => `0x${x.toString(16)}`;
const LANES = [0, 1, 2, 3];

const accumulate = (j: number) => `
        (local.set $v (v128.load offset=${16 * j} align=1 (local.get $at)))
        (local.set $k (v128.xor (local.get $v) (v128.load offset=${KEYS_AT + 16 * j} align=1 (local.get $key))))
        (local.set $a${j} (i64x2.add (local.get $a${j}) (i64x2.add
          (i64x2.extmul_low_i32x4_u
            (i8x16.shuffle 0 1 2 3 8 9 10 11 0 1 2 3 8 9 10 11 (local.get $k) (local.get $k))
            (i8x16.shuffle 4 5 6 7 12 13 14 15 4 5 6 7 12 13 14 15 (local.get $k) (local.get $k)))
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))`;

const scramble = (j: number) => `
          (local.set $a${j} (i64x2.mul
            (v128.xor (v128.xor (local.get $a${j}) (i64x2.shr_u (local.get $a${j}) (i32.const 47)))
              (v128.load offset=${KEYS_AT + STRIPE_KEY_BYTES + 16 * j} align=1 (i32.const 0)))
            (v128.const i64x2 ${hex(PRIME32_1)} ${hex(PRIME32_1)})))`;

const fold = (j: number, lane: number) => `
    (local.set $h (i64.add (i64.mul (i64.xor (local.get $h)
      (i64.mul (i64.rotl (i64.mul (i64x2.extract_lane ${lane} (global.get $a${j})) (i64.const ${hex(PRIME64_2)})) (i64.const 31)) (i64.const ${hex(PRIME64_1)})))
      (i64.const ${hex(PRIME64_1)})) (i64.const ${hex(PRIME64_4)})))`;

export const kvHashWat = (): string => `(module
  (import "env" "memory" (memory 1))
${LANES.map((j) => `  (global $a${j} (mut v128) (v128.const i64x2 0 0))`).join("\n")}
  (global $stripes (mut i32) (i32.const 0))

  (func (export "reset")
${LANES.map((j) => `    (global.set $a${j} (v128.const i64x2 ${hex(INITIAL_LANES[2 * j]!)} ${hex(INITIAL_LANES[2 * j + 1]!)}))`).join("\n")}
    (global.set $stripes (i32.const 0)))

  (func (export "update") (param $at i32) (param $bytes i32)
    (local $end i32) (local $key i32) (local $s i32) (local $v v128) (local $k v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
${LANES.map((j) => `    (local.set $a${j} (global.get $a${j}))`).join("\n")}
    (local.set $s (global.get $stripes))
    (local.set $end (i32.add (local.get $at) (local.get $bytes)))
    (block $done
      (loop $stripe
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $key (i32.shl (i32.and (local.get $s) (i32.const 15)) (i32.const 6)))
${LANES.map(accumulate).join("\n")}
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (local.set $at (i32.add (local.get $at) (i32.const 64)))
        (if (i32.eqz (i32.and (local.get $s) (i32.const 15)))
          (then
${LANES.map(scramble).join("\n")}))
        (br $stripe)))
${LANES.map((j) => `    (global.set $a${j} (local.get $a${j}))`).join("\n")}
    (global.set $stripes (local.get $s)))

  (func (export "finish") (param $total f64) (result i32)
    (local $h i64)
    (local.set $h (i64.mul (i64.trunc_sat_f64_u (local.get $total)) (i64.const ${hex(PRIME64_1)})))
${LANES.flatMap((j) => [fold(j, 0), fold(j, 1)]).join("\n")}
    (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 33))) (i64.const ${hex(PRIME64_2)})))
    (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 29))) (i64.const ${hex(PRIME64_3)})))
    (local.set $h (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 32))))
    (i32.wrap_i64 (local.get $h))))
`;
