// The WebAssembly text of the KV chunk checksum (see kv-hash.ts for what it is and why), compiled by
// `npx tsx src/kv/kernels/wasm/build.ts` into kv-hash-wasm.ts. The module imports its memory, which holds the
// secret (KEYS_AT) and the bytes to hash; its state is eight i32x4 accumulators and a stripe counter in globals.
//
//   reset()              starts a new hash
//   update(at, bytes)    hashes `bytes` (a multiple of 64) from address `at`, 64-byte stripe by stripe
//   finish(total) → i32  folds the accumulators with the total length (an f64) into the 32-bit checksum
//
// Per stripe s and 16-byte lane j, with v the lane's bytes and A, B the two keys of stripe s mod 16 for it:
// p_j += dot(v ^ s ^ A, v ^ B) — eight signed 16-bit products summed in pairs into four 32-bit lanes, one SIMD
// instruction (pmaddwd) — and d_j += v as four 32-bit words. The stripe number in the first factor makes every
// stripe's function different, so stripes 16 apart (same keys) cannot trade places unseen; d catches any change
// of a single word. The fold makes 64-bit words of p and d and mixes them as XXH3's merge does. On a block in
// cache it ran ~1.6× faster than the XXH3-style loop it replaced (26.4–26.7 against 16.6–17.1 GB/s here,
// bench/kv-checksum.ts): per 16 bytes one load, three XORs, one dot and two adds, no multiply. (A periodic
// XXH3-style scramble of the accumulators cost a third of the speed in V8, even out of the stripe loop, so there
// is none.)

/** Byte address of the 16 stripe keys, 128 bytes each: A for the four lanes, then B. */
export const KEYS_AT = 0;
export const KEY_BYTES = 2048;

export const PRIME64_1 = 0x9e3779b185ebca87n;
export const PRIME64_2 = 0xc2b2ae3d27d4eb4fn;
export const PRIME64_3 = 0x165667b19e3779f9n;
export const PRIME64_4 = 0x85ebca77c2b2ae63n;

const hex = (x: bigint) => `0x${x.toString(16)}`;
const LANES = [0, 1, 2, 3];
/** The accumulators: p0..p3, then d0..d3. */
const ACCUMULATORS = [...LANES.map((j) => `p${j}`), ...LANES.map((j) => `d${j}`)];

const accumulate = (j: number) => `
        (local.set $v (v128.load offset=${16 * j} align=1 (local.get $at)))
        (local.set $p${j} (i32x4.add (local.get $p${j}) (i32x4.dot_i16x8_s
          (v128.xor (v128.xor (local.get $v) (local.get $position)) (v128.load offset=${KEYS_AT + 16 * j} align=1 (local.get $key)))
          (v128.xor (local.get $v) (v128.load offset=${KEYS_AT + 64 + 16 * j} align=1 (local.get $key))))))
        (local.set $d${j} (i32x4.add (local.get $d${j}) (local.get $v)))`;

const fold = (j: number, lane: number) => `
    (local.set $w (i64.or (i64.extend_i32_u (i32x4.extract_lane ${lane} (global.get $p${j})))
      (i64.shl (i64.extend_i32_u (i32x4.extract_lane ${lane} (global.get $d${j}))) (i64.const 32))))
    (local.set $h (i64.add (i64.mul (i64.xor (local.get $h)
      (i64.mul (i64.rotl (i64.mul (local.get $w) (i64.const ${hex(PRIME64_2)})) (i64.const 31)) (i64.const ${hex(PRIME64_1)})))
      (i64.const ${hex(PRIME64_1)})) (i64.const ${hex(PRIME64_4)})))`;

export const kvHashWat = (): string => `(module
  (import "env" "memory" (memory 1))
${ACCUMULATORS.map((name) => `  (global $${name} (mut v128) (v128.const i64x2 0 0))`).join("\n")}
  (global $stripes (mut i32) (i32.const 0))

  (func (export "reset")
${ACCUMULATORS.map((name) => `    (global.set $${name} (v128.const i64x2 0 0))`).join("\n")}
    (global.set $stripes (i32.const 0)))

  (func (export "update") (param $at i32) (param $bytes i32)
    (local $end i32) (local $key i32) (local $s i32) (local $v v128) (local $position v128)
${ACCUMULATORS.map((name) => `    (local $${name} v128)`).join("\n")}
${ACCUMULATORS.map((name) => `    (local.set $${name} (global.get $${name}))`).join("\n")}
    (local.set $s (global.get $stripes))
    (local.set $end (i32.add (local.get $at) (local.get $bytes)))
    (block $done
      (loop $stripe
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (local.set $key (i32.shl (i32.and (local.get $s) (i32.const 15)) (i32.const 7)))
        (local.set $position (i32x4.splat (local.get $s)))
${LANES.map(accumulate).join("\n")}
        (local.set $s (i32.add (local.get $s) (i32.const 1)))
        (local.set $at (i32.add (local.get $at) (i32.const 64)))
        (br $stripe)))
${ACCUMULATORS.map((name) => `    (global.set $${name} (local.get $${name}))`).join("\n")}
    (global.set $stripes (local.get $s)))

  (func (export "finish") (param $total f64) (result i32)
    (local $h i64) (local $w i64)
    (local.set $h (i64.mul (i64.trunc_sat_f64_u (local.get $total)) (i64.const ${hex(PRIME64_1)})))
${LANES.flatMap((j) => LANES.map((lane) => fold(j, lane))).join("\n")}
    (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 33))) (i64.const ${hex(PRIME64_2)})))
    (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 29))) (i64.const ${hex(PRIME64_3)})))
    (local.set $h (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 32))))
    (i32.wrap_i64 (local.get $h))))
`;
