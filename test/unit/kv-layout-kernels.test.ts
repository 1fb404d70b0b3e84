import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { KernelShape } from "../../src/kv/kernels/kernel-shape.ts";
import { hndToNhd, nhdToHnd, transposeV, untransposeV } from "../../src/kv/kernels/permute.ts";
import { repage } from "../../src/kv/kernels/repage.ts";

// Reference positions of element (token t, head h, dim d) in a plane of `page`-token blocks, per order.
type Order = "NHD" | "HND" | "HDN";
const at = (order: Order, page: number, H: number, D: number, t: number, h: number, d: number): number => {
  const b = Math.floor(t / page);
  const s = t % page;
  const base = b * page * H * D;
  if (order === "NHD") return base + (s * H + h) * D + d;
  if (order === "HND") return base + (h * page + s) * D + d;
  return base + (h * D + d) * page + s;
};

const shapeArb = fc.record({
  heads: fc.integer({ min: 1, max: 4 }),
  headDim: fc.integer({ min: 1, max: 16 }),
  tokens: fc.integer({ min: 0, max: 70 }),
  elemBytes: fc.constantFrom(1 as const, 2 as const, 4 as const),
  page: fc.integer({ min: 1, max: 40 }),
  seed: fc.integer(),
  // Misaligned views check the kernels never assume a buffer starts on an element boundary.
  offset: fc.integer({ min: 0, max: 3 }),
});

type Arb = { heads: number; headDim: number; tokens: number; elemBytes: 1 | 2 | 4; page: number; seed: number; offset: number };

const planeBytes = (s: Arb, page: number) => Math.ceil(s.tokens / page) * page * s.heads * s.headDim * s.elemBytes;

/** A plane in `order` holding element value f(t, h, d) (several bytes each), zeros past tokens, at a byte offset. */
const plane = (s: Arb, order: Order, page: number, pad = 0) => {
  const n = planeBytes(s, page);
  const out = new Uint8Array(n + s.offset).subarray(s.offset).fill(pad);
  for (let t = 0; t < Math.ceil(s.tokens / page) * page; t++)
    for (let h = 0; h < s.heads; h++)
      for (let d = 0; d < s.headDim; d++)
        for (let k = 0; k < s.elemBytes; k++) {
          const i = at(order, page, s.heads, s.headDim, t, h, d) * s.elemBytes + k;
          out[i] = t < s.tokens ? (s.seed + t * 131 + h * 17 + d * 7 + k * 3) & 0xff : pad;
        }
  return out;
};

const kernelShape = (s: Arb, page: number): KernelShape => ({
  blocks: Math.ceil(s.tokens / page),
  page,
  heads: s.heads,
  headDim: s.headDim,
  elemBytes: s.elemBytes,
  tokens: s.tokens,
});

const run = (kernel: (src: Uint8Array, dst: Uint8Array, k: KernelShape) => void, src: Uint8Array, s: Arb, page: number) => {
  const dst = new Uint8Array(src.length + s.offset).subarray(s.offset).fill(0xee);
  kernel(src, dst, kernelShape(s, page));
  return dst;
};

describe("KV layout kernels", () => {
  it("NHD → HND and back move every element to the reference position, zero past tokens even over garbage", () => {
    fc.assert(
      fc.property(shapeArb, (s) => {
        const hnd = run(nhdToHnd, plane(s, "NHD", s.page, 0x77), s, s.page);
        expect(hnd).toEqual(plane(s, "HND", s.page));
        expect(run(hndToNhd, plane(s, "HND", s.page, 0x77), s, s.page)).toEqual(plane(s, "NHD", s.page));
      }),
    );
  });

  it("V transpose (heads, page, dim) ↔ (heads, dim, page) matches the reference for 1-, 2- and 4-byte elements", () => {
    fc.assert(
      fc.property(shapeArb, (s) => {
        expect(run(transposeV, plane(s, "HND", s.page, 0x77), s, s.page)).toEqual(plane(s, "HDN", s.page));
        expect(run(untransposeV, plane(s, "HDN", s.page, 0x77), s, s.page)).toEqual(plane(s, "HND", s.page));
      }),
    );
  });

  it("V transpose by register tiles (page and head_dim multiples of the 8- or 4-element tile) matches the reference", () => {
    const tiled = fc.record({
      heads: fc.integer({ min: 1, max: 3 }),
      headDim: fc.constantFrom(8, 16, 24),
      tokens: fc.integer({ min: 0, max: 70 }),
      elemBytes: fc.constantFrom(2 as const, 4 as const),
      page: fc.constantFrom(8, 16, 32),
      seed: fc.integer(),
      offset: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(
      fc.property(tiled, (s) => {
        expect(run(transposeV, plane(s, "HND", s.page, 0x77), s, s.page)).toEqual(plane(s, "HDN", s.page));
        expect(run(untransposeV, plane(s, "HDN", s.page, 0x77), s, s.page)).toEqual(plane(s, "HND", s.page));
      }),
    );
  });

  it("blocks larger than one staging chunk (32 heads × 128 dim × 16 tokens of f32 = 256 KiB) move whole, many per layer", () => {
    /** Index of the first differing byte, −1 if none (toEqual walks big arrays element by element, slowly). */
    const firstDifference = (a: Uint8Array, b: Uint8Array) => (a.length !== b.length ? -2 : a.findIndex((x, i) => x !== b[i]));
    for (const tokens of [20, 16 * 5 + 3]) {
      const s: Arb = { heads: 32, headDim: 128, tokens, elemBytes: 4, page: 16, seed: tokens, offset: 1 };
      expect(firstDifference(run(nhdToHnd, plane(s, "NHD", s.page, 0x77), s, s.page), plane(s, "HND", s.page))).toBe(-1);
      expect(firstDifference(run(hndToNhd, plane(s, "HND", s.page, 0x77), s, s.page), plane(s, "NHD", s.page))).toBe(-1);
      expect(firstDifference(run(transposeV, plane(s, "HND", s.page, 0x77), s, s.page), plane(s, "HDN", s.page))).toBe(-1);
      expect(firstDifference(run(untransposeV, plane(s, "HDN", s.page, 0x77), s, s.page), plane(s, "HND", s.page))).toBe(-1);
    }
  });

  it("re-paging between any two page sizes keeps every token, in both token orders, and round-trips", () => {
    fc.assert(
      fc.property(shapeArb, fc.integer({ min: 1, max: 40 }), fc.constantFrom("NHD" as const, "HND" as const), (s, to, order) => {
        const shape = { order, heads: s.heads, headDim: s.headDim, elemBytes: s.elemBytes, tokens: s.tokens };
        const src = plane(s, order, s.page, 0x77);
        const out = new Uint8Array(planeBytes(s, to)).fill(0xee);
        repage(src, out, { ...shape, fromPage: s.page, toPage: to });
        expect(out).toEqual(plane({ ...s, offset: 0 }, order, to));
        const back = new Uint8Array(planeBytes(s, s.page)).fill(0xee);
        repage(out, back, { ...shape, fromPage: to, toPage: s.page });
        expect(back).toEqual(plane({ ...s, offset: 0 }, order, s.page));
      }),
    );
  });
});
