// The WebAssembly text of every KV translation kernel: the source `build.ts` compiles into `kernels-wasm.ts`.
// V8 neither inlines wasm calls nor runs JavaScript typed-array loops faster than ~2 ns per element on the
// machines measured, so each kernel is one flat loop, written once here as a template and stamped out per
// element width or conversion. Kernels work on wasm memory only: `wasm-heap.ts` stages the caller's bytes in
// and out in chunks. All addresses and counts are in bytes unless a name says otherwise.
//
// Element-wise loops may run up to OVERRUN_BYTES past their last element, reading and writing staging slack;
// the stager zero-pads the input, so over-reads are zeros.

/** Where the lookup tables sit in wasm memory (the byte address of entry 0 is 0, so a code is its own address). */
export const TABLE_BYTES = 0x40000;

/** Passes per loop turn of the element-wise kernels; a kernel may run this many passes past its last element. */
export const UNROLL = 4;
/** The most bytes an element-wise kernel reads or writes past its last element: a turn of passes of ≤ 64 bytes. */
export const OVERRUN_BYTES = UNROLL * 64;

const hex = (x: number) => `0x${(x >>> 0).toString(16)}`;
const i32 = (x: number) => `(i32.const ${hex(x)})`;
const get = (name: string) => `(local.get $${name})`;
const set = (name: string, value: string) => `(local.set $${name} ${value})`;
const add = (a: string, b: string) => `(i32.add ${a} ${b})`;
const mul = (a: string, b: string) => `(i32.mul ${a} ${b})`;
const lanes32 = (x: number) => `(v128.const i32x4 ${hex(x)} ${hex(x)} ${hex(x)} ${hex(x)})`;
const lanes16 = (x: number) => `(v128.const i16x8 ${Array(8).fill(hex(x)).join(" ")})`;
const lanes8 = (x: number) => `(v128.const i8x16 ${Array(16).fill(hex(x)).join(" ")})`;
const locals = (type: string, ...names: string[]) => names.map((n) => `(local $${n} ${type})`).join(" ");

/** `for (let v = 0; v < count; v++) body` */
const repeat = (v: string, count: string, body: string) => `
    ${set(v, i32(0))}
    (block $${v}_done (loop $${v}_next
      (br_if $${v}_done (i32.ge_u ${get(v)} ${count}))
      ${body}
      ${set(v, add(get(v), i32(1)))}
      (br $${v}_next)))`;

/** Copies `bytes` from `src` to `dst` 16 at a time (may write up to 15 bytes past the end); moves `dst` on. */
const copyRow = (dst: string, src: string, bytes: string) => `
    ${set("k", i32(0))}
    (block $row_done (loop $row_next
      (br_if $row_done (i32.ge_u ${get("k")} ${bytes}))
      (v128.store ${add(get(dst), get("k"))} (v128.load ${add(get(src), get("k"))}))
      ${set("k", add(get("k"), i32(16)))}
      (br $row_next)))
    ${set(dst, add(get(dst), bytes))}`;

/** Zeroes `bytes` at `dst` and moves `dst` on (memory.fill is a runtime call, so skipped when there is nothing to fill). */
const zeros = (dst: string, bytes: string) => `
    ${set("fill", bytes)}
    (if ${get("fill")} (then (memory.fill ${get(dst)} ${i32(0)} ${get("fill")})))
    ${set(dst, add(get(dst), get("fill")))}`;

interface ElementKernelSpec {
  readonly name: string;
  /** Bytes of one input and one output element. */
  readonly inBytes: number;
  readonly outBytes: number;
  /** Elements one pass of the body handles. */
  readonly perPass: number;
  readonly params?: string;
  readonly locals?: string;
  /** Reads from $in, writes to $out. */
  readonly body: string;
  /**
   * The full rule for a pass, when `body` only handles common values: `body` then ORs the lanes it cannot
   * handle into $odd, and a turn with any such lane is redone with `slow`.
   */
  readonly slow?: string;
  readonly after?: string;
}

/** UNROLL passes of `body`, each followed by a move of $in and $out to the next pass. */
const turn = (k: ElementKernelSpec, body: string) =>
  Array.from(
    { length: UNROLL },
    () => `${body}
      ${set("in", add(get("in"), i32(k.perPass * k.inBytes)))}
      ${set("out", add(get("out"), i32(k.perPass * k.outBytes)))}`,
  ).join("\n");

/**
 * `name(in, out, n, ...params)`: converts n elements, `perPass` at a time, UNROLL passes per loop turn.
 * TurboFan rebuilds every vector constant once per basic block, so long turns without branches amortise
 * that over more elements; a fallback costs one branch per turn.
 */
const elementKernel = (k: ElementKernelSpec) => `
  (func (export "${k.name}") (param $in i32) (param $out i32) (param $n i32) ${k.params ?? ""}
    (local $end i32) ${k.slow === undefined ? "" : locals("v128", "odd")} ${k.locals ?? ""}
    ${set("end", add(get("in"), mul(get("n"), i32(k.inBytes))))}
    (block $done (loop $next
      (br_if $done (i32.ge_u ${get("in")} ${get("end")}))
      ${k.slow === undefined ? "" : set("odd", lanes32(0))}
      ${turn(k, k.body)}
      ${
        k.slow === undefined
          ? ""
          : `(if (v128.any_true ${get("odd")}) (then
        ${set("in", `(i32.sub ${get("in")} ${i32(UNROLL * k.perPass * k.inBytes)})`)}
        ${set("out", `(i32.sub ${get("out")} ${i32(UNROLL * k.perPass * k.outBytes)})`)}
        ${turn(k, k.slow)}))`
      }
      (br $next)))
    ${k.after ?? ""})`;

// ---- f32 / f16 / bf16 ----
// Each conversion has a short path for the values KV caches hold (normal numbers) and the full rule for a
// vector that holds anything else (zero, subnormal, out of range, inf, NaN), taken only when one does.

/** $r ← f32 bits of the four f16 codes in the low halves of `$x`: exact, NaN payloads kept. Uses $a. */
const f16ToF32 = (x: string) => `
    ${set("a", `(i32x4.shl (v128.and ${get(x)} ${lanes32(0x7fff)}) (i32.const 13))`)}
    ;; × 2^112 rebiases the exponent, exactly, subnormals included
    ${set("r", `(f32x4.mul ${get("a")} ${lanes32(0x77800000)})`)}
    ;; inf / NaN: all-ones exponent, mantissa kept
    ${set("r", `(v128.bitselect (v128.or ${get("a")} ${lanes32(0x7f800000)}) ${get("r")} (i32x4.gt_s ${get("a")} ${lanes32(0x0f7fffff)}))`)}
    ${set("r", `(v128.or ${get("r")} (i32x4.shl (v128.and ${get(x)} ${lanes32(0x8000)}) (i32.const 16)))`)}`;

/** $r ← f16 codes (low halves) of the f32 bits in `$x` in f16's normal range: rebias, round away 13 bits to even. Uses $a. */
const f32ToF16Normal = (x: string) => `
    ${set("a", `(v128.and ${get(x)} ${lanes32(0x7fffffff)})`)}
    ${set("r", `(i32x4.shr_u (i32x4.add (i32x4.add ${get("a")} ${lanes32(0xc8000fff)}) (v128.and (i32x4.shr_u ${get("a")} (i32.const 13)) ${lanes32(1)})) (i32.const 13))`)}
    ${set("r", `(v128.or ${get("r")} (v128.and (i32x4.shr_u ${get(x)} (i32.const 16)) ${lanes32(0x8000)}))`)}`;

/** Lanes of the f32 bits `bits` outside f16's normal range: |x| < 2^-14 or |x| ≥ 65520 (inf and NaN included). */
const outsideF16Normal = (bits: string) =>
  `(i32x4.ge_u (i32x4.sub (v128.and ${bits} ${lanes32(0x7fffffff)}) ${lanes32(0x38800000)}) ${lanes32(0x477ff000 - 0x38800000)})`;

/** $r ← f16 codes (low halves) of the f32 bits in `$x`: round to nearest even, ≥ 65520 → ±inf, NaN quiet. Uses $a. */
const f32ToF16 = (x: string) => `
    ${f32ToF16Normal(x)}
    ;; below 2^-14: adding 0.5 makes the FPU round to a multiple of 2^-24, ties to even
    ${set("r", `(v128.bitselect (v128.or (i32x4.sub (f32x4.add ${get("a")} (v128.const f32x4 0.5 0.5 0.5 0.5)) ${lanes32(0x3f000000)}) (v128.and (i32x4.shr_u ${get(x)} (i32.const 16)) ${lanes32(0x8000)})) ${get("r")} (i32x4.lt_s ${get("a")} ${lanes32(0x38800000)}))`)}
    ${set("r", `(v128.bitselect (v128.or (v128.and (i32x4.shr_u ${get(x)} (i32.const 16)) ${lanes32(0x8000)}) (v128.bitselect (v128.or (v128.and (i32x4.shr_u ${get("a")} (i32.const 13)) ${lanes32(0x3ff)}) ${lanes32(0x7e00)}) ${lanes32(0x7c00)} (i32x4.gt_s ${get("a")} ${lanes32(0x7f800000)}))) ${get("r")} (i32x4.ge_s ${get("a")} ${lanes32(0x477ff000)}))`)}`;

/** $r ← bf16 codes (low halves) of the f32 bits in `$x`, not NaN: round to nearest even (f32 max and up → ±inf). */
const f32ToBf16 = (x: string) => `
    ${set("r", `(i32x4.shr_u (i32x4.add (i32x4.add ${get(x)} ${lanes32(0x7fff)}) (v128.and (i32x4.shr_u ${get(x)} (i32.const 16)) ${lanes32(1)})) (i32.const 16))`)}`;

/** NaN lanes of the f32 bits `bits`. */
const isNaN32 = (bits: string) => `(i32x4.gt_u (v128.and ${bits} ${lanes32(0x7fffffff)}) ${lanes32(0x7f800000)})`;

/** $r ← bf16 codes of the f32 bits in `$x`, NaN quiet: (bits >> 16) | 0x40. */
const f32ToBf16WithNaN = (x: string) => `
    ${f32ToBf16(x)}
    ${set("r", `(v128.bitselect (v128.or (i32x4.shr_u ${get(x)} (i32.const 16)) ${lanes32(0x40)}) ${get("r")} ${isNaN32(get(x))})`)}`;

const wideLocals = locals("v128", "v", "x", "r", "a", "lo", "h", "abs", "zero");

/** Loads 8 × 16-bit codes as $v, zero-extends half 0 or 1 into $x. */
const load16 = (half: 0 | 1) =>
  half === 0
    ? `${set("v", "(v128.load (local.get $in))")} ${set("x", `(i32x4.extend_low_i16x8_u ${get("v")})`)}`
    : set("x", `(i32x4.extend_high_i16x8_u ${get("v")})`);
const loadF32 = (half: 0 | 1) => set("x", `(v128.load offset=${half * 16} (local.get $in))`);
const bf16Bits = set("x", `(i32x4.shl ${get("x")} (i32.const 16))`);

/** $h ← 8 × 16-bit codes: `step` run on both halves of the input (`load`), each making four codes in $r. */
const narrowed = (load: (half: 0 | 1) => string, step: string) => `
    ${load(0)} ${step} ${set("lo", get("r"))}
    ${load(1)} ${step}
    ${set("h", `(i16x8.narrow_i32x4_u ${get("lo")} ${get("r")})`)}`;

/** Adds the lanes of `mask` to the turn's lanes that need the full rule. */
const needsFullRule = (mask: string) => set("odd", `(v128.or ${get("odd")} ${mask})`);

const store = `(v128.store (local.get $out) ${get("h")})`;

const f16ToF32Kernel = elementKernel({
  name: "f16_to_f32",
  inBytes: 2,
  outBytes: 4,
  perPass: 8,
  locals: wideLocals,
  body: `
    ${load16(0)} ${f16ToF32("x")}
    (v128.store (local.get $out) ${get("r")})
    ${load16(1)} ${f16ToF32("x")}
    (v128.store offset=16 (local.get $out) ${get("r")})`,
});

const bf16ToF32Kernel = elementKernel({
  name: "bf16_to_f32",
  inBytes: 2,
  outBytes: 4,
  perPass: 8,
  locals: wideLocals,
  body: `
    ;; each code becomes the top half of a 32-bit lane whose bottom half is zero
    ${set("v", "(v128.load (local.get $in))")}
    (v128.store (local.get $out) (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 ${lanes32(0)} ${get("v")}))
    (v128.store offset=16 (local.get $out) (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 ${lanes32(0)} ${get("v")}))`,
});

// Comparisons are signed wherever the values are non-negative (|x|): SSE has no unsigned lane compares.
const f32ToF16Kernel = elementKernel({
  name: "f32_to_f16",
  inBytes: 4,
  outBytes: 2,
  perPass: 8,
  locals: wideLocals,
  body: `
    ${needsFullRule(`(v128.or ${outsideF16Normal("(v128.load (local.get $in))")} ${outsideF16Normal("(v128.load offset=16 (local.get $in))")})`)}
    ${narrowed(loadF32, f32ToF16Normal("x"))} ${store}`,
  slow: `${narrowed(loadF32, f32ToF16("x"))} ${store}`,
});

const f32ToBf16Kernel = elementKernel({
  name: "f32_to_bf16",
  inBytes: 4,
  outBytes: 2,
  perPass: 8,
  locals: wideLocals,
  body: `
    ${needsFullRule(`(v128.or ${isNaN32("(v128.load (local.get $in))")} ${isNaN32("(v128.load offset=16 (local.get $in))")})`)}
    ${narrowed(loadF32, f32ToBf16("x"))} ${store}`,
  slow: `${narrowed(loadF32, f32ToBf16WithNaN("x"))} ${store}`,
});

const gt16 = (a: string, b: string) => `(i16x8.gt_s ${a} ${b})`;
const loadAbs16 = `
    ${set("v", "(v128.load (local.get $in))")}
    ${set("abs", `(v128.and ${get("v")} ${lanes16(0x7fff)})`)}
    ${set("zero", `(i16x8.eq ${get("abs")} ${lanes16(0)})`)}`;
const withSign16 = set("h", `(v128.or ${get("h")} (v128.and ${get("v")} ${lanes16(0x8000)}))`);

// f16 → bf16 on 16-bit lanes, for f16 normals and zero: bf16 is f16's exponent rebiased by 112 with the
// mantissa's 3 low bits rounded away to even. Subnormals, inf and NaN take the full rule, through f32.
const f16ToBf16Kernel = elementKernel({
  name: "f16_to_bf16",
  inBytes: 2,
  outBytes: 2,
  perPass: 8,
  locals: wideLocals,
  body: `
    ${loadAbs16}
    ${set("a", `(i16x8.shr_u ${get("abs")} (i32.const 3))`)}
    ${set("h", `(i16x8.add (i16x8.add ${get("a")} ${lanes16(0x3800)}) (i16x8.shr_u (i16x8.add (v128.and ${get("abs")} ${lanes16(7)}) (i16x8.add ${lanes16(3)} (v128.and ${get("a")} ${lanes16(1)}))) (i32.const 3)))`)}
    ${set("h", `(v128.andnot ${get("h")} ${get("zero")})`)}
    ${withSign16} ${store}
    ${needsFullRule(`(v128.or ${gt16(get("abs"), lanes16(0x7bff))} (v128.andnot ${gt16(lanes16(0x400), get("abs"))} ${get("zero")}))`)}`,
  slow: `${narrowed(load16, `${f16ToF32("x")} ${set("x", get("r"))} ${f32ToBf16WithNaN("x")}`)} ${store}`,
});

// bf16 → f16 on 16-bit lanes, for bf16 in f16's normal range and zero: exact in f16 (exponent rebiased by
// −112, three zero mantissa bits appended). Anything else takes the full rule: through f32 (f16 subnormals
// round, inf stays inf, NaN stays NaN) and 0x4780 ≤ |b| < 0x7f80 saturating to ±65504; only those turns hold
// values to count (saturated, below normal), so they count there. The lane counters hold 65535 passes.
const bf16ToF16Kernel = elementKernel({
  name: "bf16_to_f16",
  inBytes: 2,
  outBytes: 2,
  perPass: 8,
  params: "(param $counts i32)",
  locals: `${wideLocals} ${locals("v128", "sat", "satSum", "belowSum")}`,
  body: `
    ${loadAbs16}
    ${set("h", `(v128.andnot (i16x8.shl (i16x8.sub ${get("abs")} ${lanes16(0x3800)}) (i32.const 3)) ${get("zero")})`)}
    ${withSign16} ${store}
    ${needsFullRule(`(v128.or ${gt16(get("abs"), lanes16(0x477f))} (v128.andnot ${gt16(lanes16(0x3880), get("abs"))} ${get("zero")}))`)}`,
  slow: `
    ${narrowed(load16, `${bf16Bits} ${f32ToF16("x")}`)}
    ${set("abs", `(v128.and ${get("v")} ${lanes16(0x7fff)})`)}
    ${set("sat", `(v128.and ${gt16(get("abs"), lanes16(0x477f))} ${gt16(lanes16(0x7f80), get("abs"))})`)}
    ${set("h", `(v128.bitselect (v128.or (v128.and ${get("v")} ${lanes16(0x8000)}) ${lanes16(0x7bff)}) ${get("h")} ${get("sat")})`)}
    ${store}
    ${set("satSum", `(i16x8.sub ${get("satSum")} ${get("sat")})`)}
    ${set("belowSum", `(i16x8.sub ${get("belowSum")} (v128.andnot ${gt16(lanes16(0x3880), get("abs"))} (i16x8.eq ${get("abs")} ${lanes16(0)})))`)}`,
  after: `
    (i32.store (local.get $counts) (call $sum16 ${get("satSum")}))
    (i32.store offset=4 (local.get $counts) (call $sum16 ${get("belowSum")}))`,
});

const sum16 = `
  (func $sum16 (param $v v128) (result i32)
    (local $w v128)
    (local.set $w (i32x4.extadd_pairwise_i16x8_u (local.get $v)))
    (i32.add (i32.add (i32x4.extract_lane 0 (local.get $w)) (i32x4.extract_lane 1 (local.get $w)))
             (i32.add (i32x4.extract_lane 2 (local.get $w)) (i32x4.extract_lane 3 (local.get $w)))))`;

// ---- fp8 ----

/** Byte `i` (0..3) of the 32-bit local `$w`. */
const byteOf = (i: number) => (i === 3 ? `(i32.shr_u ${get("w")} (i32.const 24))` : `(i32.and (i32.shr_u ${get("w")} (i32.const ${8 * i})) (i32.const 0xff))`);

/** Four fp8 codes to 16-bit codes, two at a time through a 65536 × 32-bit table of code pairs (at address 0). */
const fp8To16 = elementKernel({
  name: "fp8_to_16",
  inBytes: 1,
  outBytes: 2,
  perPass: 4,
  locals: locals("i32", "w"),
  body: `
    ${set("w", "(i32.load (local.get $in))")}
    (i32.store (local.get $out) (i32.load (i32.shl (i32.and ${get("w")} (i32.const 0xffff)) (i32.const 2))))
    (i32.store offset=4 (local.get $out) (i32.load (i32.shl (i32.shr_u ${get("w")} (i32.const 16)) (i32.const 2))))`,
});

/** Four fp8 codes through a 256 × 32-bit table (at address 0). */
const fp8To32 = elementKernel({
  name: "fp8_to_32",
  inBytes: 1,
  outBytes: 4,
  perPass: 4,
  locals: locals("i32", "w"),
  body: `
    ${set("w", "(i32.load (local.get $in))")}
    ${[0, 1, 2, 3].map((i) => `(i32.store offset=${4 * i} (local.get $out) (i32.load (i32.shl ${byteOf(i)} (i32.const 2))))`).join("\n    ")}`,
});

/** Four bytes through a 256-byte table (at address 0). */
const byteMap = elementKernel({
  name: "map_8",
  inBytes: 1,
  outBytes: 1,
  perPass: 4,
  locals: locals("i32", "w"),
  body: `
    ${set("w", "(i32.load (local.get $in))")}
    (i32.store (local.get $out) (i32.or
      (i32.or (i32.load8_u ${byteOf(0)}) (i32.shl (i32.load8_u ${byteOf(1)}) (i32.const 8)))
      (i32.or (i32.shl (i32.load8_u ${byteOf(2)}) (i32.const 16)) (i32.shl (i32.load8_u ${byteOf(3)}) (i32.const 24)))))`,
});

/** Four 16-bit codes through a 65536-byte table (at address 0). */
const wide16ToFp8 = elementKernel({
  name: "map_16_to_8",
  inBytes: 2,
  outBytes: 1,
  perPass: 4,
  locals: locals("i32", "w", "u"),
  body: `
    ${set("w", "(i32.load (local.get $in))")}
    ${set("u", "(i32.load offset=4 (local.get $in))")}
    (i32.store (local.get $out) (i32.or
      (i32.or (i32.load8_u (i32.and ${get("w")} (i32.const 0xffff))) (i32.shl (i32.load8_u (i32.shr_u ${get("w")} (i32.const 16))) (i32.const 8)))
      (i32.or (i32.shl (i32.load8_u (i32.and ${get("u")} (i32.const 0xffff))) (i32.const 16)) (i32.shl (i32.load8_u (i32.shr_u ${get("u")} (i32.const 16))) (i32.const 24)))))`,
});

/**
 * f32 → fp8 through one 32-bit entry per top 16 bits of the pattern (at 0): the code below the bucket's
 * threshold (bits 0..7), the code from it on (8..15) and the threshold's low 16 bits (16..31). Four floats
 * per vector: their entries are gathered lane by lane, the rest is vector arithmetic.
 */
const f32ToFp8Quarter = (q: number) => `
    ${set("x", `(v128.load offset=${16 * q} (local.get $in))`)}
    ${set("a", `(i32x4.shl (i32x4.shr_u ${get("x")} (i32.const 16)) (i32.const 2))`)}
    ${[0, 1, 2, 3].map((l) => set("e", `(i32x4.replace_lane ${l} ${get(l === 0 ? "x" : "e")} (i32.load (i32x4.extract_lane ${l} ${get("a")})))`)).join("\n    ")}
    ${set(`r${q}`, `(v128.and (v128.bitselect ${get("e")} (i32x4.shr_u ${get("e")} (i32.const 8)) (i32x4.gt_s (i32x4.shr_u ${get("e")} (i32.const 16)) (v128.and ${get("x")} ${lanes32(0xffff)}))) ${lanes32(0xff)})`)}`;
const f32ToFp8 = elementKernel({
  name: "f32_to_fp8",
  inBytes: 4,
  outBytes: 1,
  perPass: 16,
  locals: locals("v128", "x", "a", "e", "r0", "r1", "r2", "r3"),
  body: `
    ${[0, 1, 2, 3].map(f32ToFp8Quarter).join("")}
    (v128.store (local.get $out) (i8x16.narrow_i16x8_u (i16x8.narrow_i32x4_u ${get("r0")} ${get("r1")}) (i16x8.narrow_i32x4_u ${get("r2")} ${get("r3")})))`,
});

// e4m3fn ↔ e4m3fnuz: same bytes except three codes, 16 at a time (see fp8-reinterpret.ts for the rule).
const fp8Reinterpret = (name: string, fix: string) =>
  elementKernel({
    name,
    inBytes: 1,
    outBytes: 1,
    perPass: 16,
    locals: locals("v128", "x", "low7", "is80"),
    body: `
    ${set("x", "(v128.load (local.get $in))")}
    ${set("low7", `(i8x16.eq (v128.and ${get("x")} ${lanes8(0x7f)}) ${lanes8(0x7f)})`)}
    ${set("is80", `(i8x16.eq ${get("x")} ${lanes8(0x80)})`)}
    (v128.store (local.get $out) ${fix})`,
  });
const e4m3fnToFnuz = fp8Reinterpret("e4m3fn_to_fnuz", `(v128.andnot (v128.bitselect ${lanes8(0x80)} ${get("x")} ${get("low7")}) ${get("is80")})`);
const e4m3fnuzToFn = fp8Reinterpret("e4m3fnuz_to_fn", `(v128.bitselect ${lanes8(0x7f)} (i8x16.add ${get("x")} ${get("low7")}) ${get("is80")})`);

// ---- layout permutes ----
// Each takes `units` equal units (a block, or one head's plane of a block) whose first `valid` tokens hold KV,
// writes the destination contiguously and zeroes the rest of every unit.

/** (units, page, heads, row) → (units, heads, page, row). */
const nhdToHnd = `
  (func (export "nhd_to_hnd") (param $in i32) (param $out i32) (param $units i32) (param $page i32) (param $heads i32) (param $row i32) (param $valid i32)
    (local $b i32) (local $h i32) (local $t i32) (local $k i32) (local $fill i32) (local $src i32) (local $unit i32) (local $stride i32)
    ${set("stride", mul(get("heads"), get("row")))}
    ${set("unit", mul(get("page"), get("stride")))}
    ${repeat(
      "b",
      get("units"),
      repeat(
        "h",
        get("heads"),
        `${set("src", add(add(get("in"), mul(get("b"), get("unit"))), mul(get("h"), get("row"))))}
        ${repeat("t", get("valid"), `${copyRow("out", "src", get("row"))} ${set("src", add(get("src"), get("stride")))}`)}
        ${zeros("out", mul(`(i32.sub ${get("page")} ${get("valid")})`, get("row")))}`,
      ),
    )})`;

/** (units, heads, page, row) → (units, page, heads, row). */
const hndToNhd = `
  (func (export "hnd_to_nhd") (param $in i32) (param $out i32) (param $units i32) (param $page i32) (param $heads i32) (param $row i32) (param $valid i32)
    (local $b i32) (local $h i32) (local $t i32) (local $k i32) (local $fill i32) (local $src i32) (local $unit i32) (local $plane i32)
    ${set("plane", mul(get("page"), get("row")))}
    ${set("unit", mul(get("heads"), get("plane")))}
    ${repeat(
      "b",
      get("units"),
      `${repeat(
        "t",
        get("valid"),
        `${set("src", add(add(get("in"), mul(get("b"), get("unit"))), mul(get("t"), get("row"))))}
        ${repeat("h", get("heads"), `${copyRow("out", "src", get("row"))} ${set("src", add(get("src"), get("plane")))}`)}`,
      )}
      ${zeros("out", mul(mul(`(i32.sub ${get("page")} ${get("valid")})`, get("heads")), get("row")))}`,
    )})`;

const widths = [
  { bytes: 1, load: "i32.load8_u", store: "i32.store8" },
  { bytes: 2, load: "i32.load16_u", store: "i32.store16" },
  { bytes: 4, load: "i32.load", store: "i32.store" },
] as const;

/** Per unit (page, dim) → (dim, page) of `w`-byte elements. */
const transpose = (w: (typeof widths)[number]) => `
  (func (export "transpose_${w.bytes}") (param $in i32) (param $out i32) (param $units i32) (param $page i32) (param $dim i32) (param $valid i32)
    (local $b i32) (local $d i32) (local $t i32) (local $fill i32) (local $src i32) (local $unit i32) (local $stride i32)
    ${set("stride", mul(get("dim"), i32(w.bytes)))}
    ${set("unit", mul(get("page"), get("stride")))}
    ${repeat(
      "b",
      get("units"),
      repeat(
        "d",
        get("dim"),
        `${set("src", add(add(get("in"), mul(get("b"), get("unit"))), mul(get("d"), i32(w.bytes))))}
        ${repeat("t", get("valid"), `(${w.store} ${get("out")} (${w.load} ${get("src")})) ${set("out", add(get("out"), i32(w.bytes)))} ${set("src", add(get("src"), get("stride")))}`)}
        ${zeros("out", mul(`(i32.sub ${get("page")} ${get("valid")})`, i32(w.bytes)))}`,
      ),
    )})`;

/** Per unit (dim, page) → (page, dim) of `w`-byte elements. */
const untranspose = (w: (typeof widths)[number]) => `
  (func (export "untranspose_${w.bytes}") (param $in i32) (param $out i32) (param $units i32) (param $page i32) (param $dim i32) (param $valid i32)
    (local $b i32) (local $d i32) (local $t i32) (local $fill i32) (local $src i32) (local $unit i32) (local $stride i32)
    ${set("stride", mul(get("page"), i32(w.bytes)))}
    ${set("unit", mul(get("dim"), get("stride")))}
    ${repeat(
      "b",
      get("units"),
      `${repeat(
        "t",
        get("valid"),
        `${set("src", add(add(get("in"), mul(get("b"), get("unit"))), mul(get("t"), i32(w.bytes))))}
        ${repeat("d", get("dim"), `(${w.store} ${get("out")} (${w.load} ${get("src")})) ${set("out", add(get("out"), i32(w.bytes)))} ${set("src", add(get("src"), get("stride")))}`)}`,
      )}
      ${zeros("out", mul(mul(`(i32.sub ${get("page")} ${get("valid")})`, get("dim")), i32(w.bytes)))}`,
    )})`;

// Whole tiles of 2- and 4-byte elements transpose in registers: 8 × 8 (or 4 × 4) elements loaded as rows,
// interleaved pairwise at growing widths until each vector holds one column (the SSE unpack idiom).
const UNPACK = {
  lo16: "0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23",
  hi16: "8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31",
  lo32: "0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23",
  hi32: "8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31",
  lo64: "0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23",
  hi64: "8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31",
} as const;
const unpack = (to: string, how: keyof typeof UNPACK, a: string, b: string) => set(to, `(i8x16.shuffle ${UNPACK[how]} ${get(a)} ${get(b)})`);

/** Rows r0..r7 of 16-bit elements → columns c0..c7. */
const tile8x8 = [
  ...[0, 1, 2, 3].flatMap((k) => [unpack(`a${2 * k}`, "lo16", `r${2 * k}`, `r${2 * k + 1}`), unpack(`a${2 * k + 1}`, "hi16", `r${2 * k}`, `r${2 * k + 1}`)]),
  ...[0, 1].flatMap((k) => [
    unpack(`b${4 * k}`, "lo32", `a${4 * k}`, `a${4 * k + 2}`),
    unpack(`b${4 * k + 1}`, "hi32", `a${4 * k}`, `a${4 * k + 2}`),
    unpack(`b${4 * k + 2}`, "lo32", `a${4 * k + 1}`, `a${4 * k + 3}`),
    unpack(`b${4 * k + 3}`, "hi32", `a${4 * k + 1}`, `a${4 * k + 3}`),
  ]),
  ...[0, 1, 2, 3].flatMap((k) => [unpack(`c${2 * k}`, "lo64", `b${k}`, `b${k + 4}`), unpack(`c${2 * k + 1}`, "hi64", `b${k}`, `b${k + 4}`)]),
].join("\n    ");

/** Rows r0..r3 of 32-bit elements → columns c0..c3. */
const tile4x4 = [
  unpack("a0", "lo32", "r0", "r1"),
  unpack("a1", "hi32", "r0", "r1"),
  unpack("a2", "lo32", "r2", "r3"),
  unpack("a3", "hi32", "r2", "r3"),
  unpack("c0", "lo64", "a0", "a2"),
  unpack("c1", "hi64", "a0", "a2"),
  unpack("c2", "lo64", "a1", "a3"),
  unpack("c3", "hi64", "a1", "a3"),
].join("\n    ");

/** `for (let v = 0; v < count; v += step) body` */
const stepping = (v: string, count: string, step: number, body: string) => `
    ${set(v, i32(0))}
    (block $${v}_done (loop $${v}_next
      (br_if $${v}_done (i32.ge_u ${get(v)} ${count}))
      ${body}
      ${set(v, add(get(v), i32(step)))}
      (br $${v}_next)))`;

/**
 * Per unit, a (rows, cols) matrix of `w`-byte elements → (cols, rows), both multiples of the tile size and
 * every token valid: V's transpose is (page, dim) → (dim, page), its inverse (dim, page) → (page, dim).
 */
const tiledTranspose = (w: 2 | 4) => {
  const n = 16 / w;
  const tile = w === 2 ? tile8x8 : tile4x4;
  const vectors = [..."rabc"].flatMap((p) => Array.from({ length: n }, (_, i) => `${p}${i}`));
  return `
  (func (export "transpose_tiles_${w}") (param $in i32) (param $out i32) (param $units i32) (param $rows i32) (param $cols i32)
    (local $u i32) (local $i i32) (local $j i32) (local $p i32) (local $unit i32) ${locals("v128", ...vectors)}
    ${set("unit", mul(mul(get("rows"), get("cols")), i32(w)))}
    ${repeat(
      "u",
      get("units"),
      stepping(
        "i",
        get("rows"),
        n,
        stepping(
          "j",
          get("cols"),
          n,
          `${set("p", add(add(get("in"), mul(get("u"), get("unit"))), mul(add(mul(get("i"), get("cols")), get("j")), i32(w))))}
          ${Array.from({ length: n }, (_, k) => `${set(`r${k}`, `(v128.load ${get("p")})`)} ${set("p", add(get("p"), mul(get("cols"), i32(w))))}`).join("\n    ")}
          ${tile}
          ${set("p", add(add(get("out"), mul(get("u"), get("unit"))), mul(add(mul(get("j"), get("rows")), get("i")), i32(w))))}
          ${Array.from({ length: n }, (_, k) => `(v128.store ${get("p")} ${get(`c${k}`)}) ${set("p", add(get("p"), mul(get("rows"), i32(w))))}`).join("\n    ")}`,
        ),
      ),
    )})`;
};

/** The whole module's text. */
export const kernelsWat = (): string => `(module
  (memory (export "memory") 16)
${sum16}
${f16ToF32Kernel}
${bf16ToF32Kernel}
${f32ToF16Kernel}
${f32ToBf16Kernel}
${f16ToBf16Kernel}
${bf16ToF16Kernel}
${fp8To16}
${fp8To32}
${byteMap}
${wide16ToFp8}
${f32ToFp8}
${e4m3fnToFnuz}
${e4m3fnuzToFn}
${nhdToHnd}
${hndToNhd}
${widths.map(transpose).join("\n")}
${widths.map(untranspose).join("\n")}
${tiledTranspose(2)}
${tiledTranspose(4)}
)
`;
