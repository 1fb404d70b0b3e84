// llama.cpp's per-sequence state file, parsed and written back: byte-exact on real states the engine
// exports (flash attention on and off), V layout conversion exact, bad input refused with LlamaStateError.
// The states are made here from the real test model; nothing binary is checked in.
import { beforeAll, describe, expect, it } from "vitest";
import { Effect } from "effect";
import { makeLlamaCppEngine } from "../../src/engine/llama-cpp.ts";
import { resolveModelPath } from "../../src/engine/model-resolution.ts";
import {
  GGML_TYPE,
  type LlamaSeqState,
  LlamaStateError,
  type LlamaStateErrorCode,
  llamaSeqState,
  parseLlamaSeqState,
  setVTransposed,
  tokenMajorLayers,
  writeLlamaSeqState,
} from "../../src/kv/llama-state.ts";

// stories260K: 5 layers, 4 KV heads × head dim 8, F16 K and V.
const LAYERS = 5;
const KV_HEADS = 4;
const HEAD_DIM = 8;
const ROW_BYTES = KV_HEADS * HEAD_DIM * 2;
const SEQUENCES = 8; // the engine's default, so the file holds 8 streams
const TOKEN_COUNTS = [1, 5, 40, 200] as const;
const TEXT = "Once upon a time there was a little girl named Lily. She loved to play outside in the park with her "
  + "friends. One day she saw a big red ball under a tree and she wanted to play with it. ";

type Fa = "on" | "off";
const states = new Map<string, Uint8Array>();
const key = (fa: Fa, n: number) => `${fa}/${n}`;
const stateOf = (fa: Fa, n: number) => states.get(key(fa, n))!;
const promptOf = new Map<number, ReadonlyArray<number>>();

beforeAll(async () => {
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        for (const fa of ["on", "off"] as const) {
          const engine = yield* makeLlamaCppEngine({ modelPath: resolveModelPath(undefined), flashAttention: fa === "on", sequences: SEQUENCES });
          let all = yield* engine.tokenize(TEXT);
          while (all.length < 200) all = [...all, ...(yield* engine.tokenize(TEXT)).slice(1)];
          for (const n of TOKEN_COUNTS) {
            const prompt = all.slice(0, n);
            promptOf.set(n, prompt);
            // Prefill on a fresh sequence and export, as a prefill worker does.
            const bytes = yield* Effect.scoped(Effect.flatMap(engine.prefill(prompt), ({ sequence }) => sequence.exportKv));
            states.set(key(fa, n), bytes);
          }
        }
      }),
    ),
  );
}, 120_000);

const expectStateError = (f: () => unknown, code?: LlamaStateErrorCode) => {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(LlamaStateError);
  expect(caught).toBeInstanceOf(Error);
  expect((caught as LlamaStateError)._tag).toBe("LlamaStateError");
  if (code) expect((caught as LlamaStateError).code, (caught as Error).message).toBe(code);
  return caught as LlamaStateError;
};

const sameBytes = (a: Uint8Array, b: Uint8Array) => {
  expect(a.length).toBe(b.length);
  expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length))).toBe(0);
};

describe("parse and write real llama.cpp sequence states", () => {
  for (const fa of ["on", "off"] as const) {
    for (const n of TOKEN_COUNTS) {
      it(`flash attention ${fa}, ${n} tokens: the fields are what llama.cpp wrote and writing them back is byte-exact`, () => {
        const bytes = stateOf(fa, n);
        // 12 header + 4/token, n_stream + 8 cell counts, v_trans + n_layer, 5 × (K hdr 12 + V hdr 12), 656/token
        expect(bytes.length).toBe(12 + 4 + 4 * SEQUENCES + 8 + LAYERS * 24 + 656 * n);
        const s = parseLlamaSeqState(bytes);
        expect(s.version).toBe(3);
        expect(s.magic).toBe(0x67677371);
        expect(s.tokens).toEqual(promptOf.get(n));
        expect(s.cellExt).toBe(false);
        expect(s.caches).toHaveLength(1);
        expect(s.nStream).toBe(SEQUENCES);
        expect(s.streamIndex).not.toBeNull();
        const occupied = s.caches[0]!.streams.filter((st) => st.cells.length > 0);
        expect(occupied.map((st) => st.index)).toEqual([s.streamIndex]);
        expect(s.positions).toEqual(Array.from({ length: n }, (_, i) => i));
        // non-unified cache: sequence i lives in stream i
        for (const c of s.cells) expect(c.seqIds).toEqual([s.streamIndex]);
        expect(s.vTransposed).toBe(fa === "off");
        expect(s.layers).toHaveLength(LAYERS);
        for (const { k, v } of s.layers) {
          expect(k).toMatchObject({ ggmlType: GGML_TYPE.F16, dtype: "f16", rowBytes: ROW_BYTES });
          expect(k.data.length).toBe(n * ROW_BYTES);
          expect(v).toMatchObject({ ggmlType: GGML_TYPE.F16, dtype: "f16", transposed: fa === "off", rowBytes: ROW_BYTES, elementBytes: 2, embd: KV_HEADS * HEAD_DIM });
          expect(v.data.length).toBe(n * ROW_BYTES);
        }
        sameBytes(writeLlamaSeqState(s), bytes);
      });
    }
  }
});

describe("V layout", () => {
  it("setVTransposed there and back is the identity, byte for byte, from either layout", () => {
    for (const fa of ["on", "off"] as const) {
      for (const n of TOKEN_COUNTS) {
        const bytes = stateOf(fa, n);
        const s = parseLlamaSeqState(bytes);
        const native = fa === "off";
        const other = setVTransposed(s, !native);
        expect(other.vTransposed).toBe(!native);
        expect(other.layers.every((l) => l.v.transposed === !native)).toBe(true);
        const otherBytes = writeLlamaSeqState(other);
        expect(otherBytes.length).toBe(bytes.length); // both layouts have 12-byte V headers
        if (n > 1) expect(Buffer.compare(Buffer.from(otherBytes), Buffer.from(bytes))).not.toBe(0);
        sameBytes(writeLlamaSeqState(setVTransposed(parseLlamaSeqState(otherBytes), native)), bytes);
        sameBytes(writeLlamaSeqState(setVTransposed(s, native)), bytes); // no-op
        // the input is not modified
        sameBytes(writeLlamaSeqState(s), bytes);
      }
    }
  });

  it("layer 0 of a flash-attention-on state, transposed, is byte-identical to the flash-attention-off state of the same tokens", () => {
    // Layer 0 K and V are projections of the embeddings and do not depend on how attention is computed, so
    // they must match the other layout exactly; deeper layers may differ in the last bits.
    for (const n of TOKEN_COUNTS) {
      const on = parseLlamaSeqState(stateOf("on", n));
      const off = parseLlamaSeqState(stateOf("off", n));
      const onAsOff = setVTransposed(on, true);
      const offAsOn = setVTransposed(off, false);
      sameBytes(onAsOff.layers[0]!.k.data, off.layers[0]!.k.data);
      sameBytes(onAsOff.layers[0]!.v.data, off.layers[0]!.v.data);
      sameBytes(offAsOn.layers[0]!.v.data, on.layers[0]!.v.data);
      // everything but the deeper layers' numbers: header, cells, layouts, sizes
      expect(onAsOff.tokens).toEqual(off.tokens);
      expect(onAsOff.cells).toEqual(off.cells);
    }
  });

  it("token-major views: tokens × kvHeads × headDim, the same numbers from either layout", () => {
    for (const n of TOKEN_COUNTS) {
      const on = parseLlamaSeqState(stateOf("on", n));
      const off = parseLlamaSeqState(stateOf("off", n));
      const vOn = tokenMajorLayers(on, { kvHeads: KV_HEADS });
      const vOff = tokenMajorLayers(off, { headDim: HEAD_DIM });
      expect(vOn).toHaveLength(LAYERS);
      for (let l = 0; l < LAYERS; l++) {
        for (const part of ["k", "v"] as const) {
          const view = vOn[l]![part];
          expect(view).toMatchObject({ dtype: "f16", tokens: n, kvHeads: KV_HEADS, headDim: HEAD_DIM });
          expect(view.data).toBeInstanceOf(Uint16Array);
          expect(view.data.length).toBe(n * KV_HEADS * HEAD_DIM);
          expect(view.positions).toEqual(on.positions);
        }
        // K is token-major already: the view is the bytes
        sameBytes(new Uint8Array(vOn[l]!.k.data.buffer, vOn[l]!.k.data.byteOffset, vOn[l]!.k.data.byteLength), on.layers[l]!.k.data);
        // V from the transposed file: element (t, h, d) sits at ((h·headDim + d)·tokens + t)
        const raw = off.layers[l]!.v.data;
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        const view = vOff[l]!.v.data;
        for (const t of [0, n - 1, n >> 1]) {
          for (const [h, d] of [[0, 0], [1, 3], [KV_HEADS - 1, HEAD_DIM - 1]] as const) {
            expect(view[(t * KV_HEADS + h) * HEAD_DIM + d]).toBe(dv.getUint16(((h * HEAD_DIM + d) * n + t) * 2, true));
          }
        }
      }
      expect(Array.from(vOn[0]!.v.data)).toEqual(Array.from(vOff[0]!.v.data));
      expect(Array.from(vOn[0]!.k.data)).toEqual(Array.from(vOff[0]!.k.data));
      // bytes at an odd offset cannot back a Uint16Array: the views are copies with the same numbers
      const bytes = stateOf("on", n);
      const shifted = new Uint8Array(bytes.length + 1).subarray(1);
      shifted.set(bytes);
      const vShifted = tokenMajorLayers(parseLlamaSeqState(shifted), { kvHeads: KV_HEADS });
      for (let l = 0; l < LAYERS; l++) {
        expect(Array.from(vShifted[l]!.k.data)).toEqual(Array.from(vOn[l]!.k.data));
        expect(Array.from(vShifted[l]!.v.data)).toEqual(Array.from(vOn[l]!.v.data));
      }
    }
  });

  it("an F32 V converts exactly, a quantized V is refused", () => {
    const cells = 3;
    const embd = 4;
    const f32 = new Float32Array(cells * embd).map((_, i) => i + 0.5); // cell-major: [c][j] = c·embd + j + 0.5
    const state = llamaSeqState({
      magic: 0x67677371,
      version: 3,
      tokens: [1, 2, 3],
      cellExt: false,
      caches: [{
        streams: [{
          index: 0,
          cells: [0, 1, 2].map((pos) => ({ pos, seqIds: [0], ext: null })),
          vTransposed: false,
          layers: [{
            k: { ggmlType: GGML_TYPE.F32, dtype: "f32", rowBytes: embd * 4, data: new Uint8Array(f32.buffer.slice(0)) },
            v: { ggmlType: GGML_TYPE.F32, dtype: "f32", transposed: false, rowBytes: embd * 4, elementBytes: 4, embd, data: new Uint8Array(f32.buffer.slice(0)) },
          }],
        }],
      }],
    });
    const bytes = writeLlamaSeqState(state);
    sameBytes(writeLlamaSeqState(parseLlamaSeqState(bytes)), bytes);
    const t = setVTransposed(parseLlamaSeqState(bytes), true);
    const tv = new Float32Array(new Uint8Array(t.layers[0]!.v.data).buffer);
    for (let c = 0; c < cells; c++) for (let j = 0; j < embd; j++) expect(tv[j * cells + c]).toBe(c * embd + j + 0.5);
    const tBytes = writeLlamaSeqState(t);
    expect(parseLlamaSeqState(tBytes).layers[0]!.v).toMatchObject({ transposed: true, elementBytes: 4, embd });
    sameBytes(writeLlamaSeqState(setVTransposed(parseLlamaSeqState(tBytes), false)), bytes);
    expect(Array.from(tokenMajorLayers(t, { kvHeads: 2 })[0]!.v.data)).toEqual(Array.from(f32));

    const q8 = llamaSeqState({
      ...state,
      caches: [{
        streams: [{
          ...state.caches[0]!.streams[0]!,
          layers: [{ k: state.layers[0]!.k, v: { ggmlType: GGML_TYPE.Q8_0, dtype: "q8_0", transposed: false, rowBytes: 34, elementBytes: null, embd: null, data: new Uint8Array(34 * cells) } }],
        }],
      }],
    });
    const q8Bytes = writeLlamaSeqState(q8);
    sameBytes(writeLlamaSeqState(parseLlamaSeqState(q8Bytes)), q8Bytes);
    expectStateError(() => setVTransposed(q8, true), "unsupported");
  });

  it("cells with the ext record (M-RoPE / PLE models) are detected and round-trip", () => {
    const s = parseLlamaSeqState(stateOf("on", 5));
    const withExt = llamaSeqState({
      ...s,
      cellExt: true,
      caches: s.caches.map((c) => ({
        streams: c.streams.map((st) => ({ ...st, cells: st.cells.map((cell, i) => ({ ...cell, ext: { x: i, y: 7, tok: 100 + i } })) })),
      })),
    });
    const bytes = writeLlamaSeqState(withExt);
    expect(bytes.length).toBe(stateOf("on", 5).length + 5 * 12);
    const back = parseLlamaSeqState(bytes);
    expect(back.cellExt).toBe(true);
    expect(back.cells[3]!.ext).toEqual({ x: 3, y: 7, tok: 103 });
    sameBytes(writeLlamaSeqState(back), bytes);
    expectStateError(() => parseLlamaSeqState(bytes, { cellExt: false }));
  });
});

describe("bad input is refused with LlamaStateError", () => {
  const patched = (bytes: Uint8Array, offset: number, value: number) => {
    const copy = new Uint8Array(bytes);
    new DataView(copy.buffer).setUint32(offset, value, true);
    return copy;
  };

  it("bad magic, whole-context session file, other version", () => {
    const bytes = stateOf("on", 5);
    expectStateError(() => parseLlamaSeqState(patched(bytes, 0, 0xdeadbeef)), "bad_magic");
    expect(expectStateError(() => parseLlamaSeqState(patched(bytes, 0, 0x6767736e)), "bad_magic").message).toMatch(/ggsn/);
    expectStateError(() => parseLlamaSeqState(patched(bytes, 4, 2)), "unsupported_version");
    expectStateError(() => parseLlamaSeqState(new Uint8Array(0)), "truncated");
    expectStateError(() => parseLlamaSeqState(new TextEncoder().encode("hello, this is not a state file")), "bad_magic");
  });

  it("every truncation of a real state", () => {
    for (const n of [1, 5]) {
      for (const fa of ["on", "off"] as const) {
        const bytes = stateOf(fa, n);
        for (let len = 0; len < bytes.length; len++) expectStateError(() => parseLlamaSeqState(bytes.subarray(0, len)), "truncated");
      }
    }
    const big = stateOf("off", 200);
    for (let len = 0; len < big.length; len += 97) expectStateError(() => parseLlamaSeqState(big.subarray(0, len)), "truncated");
    expectStateError(() => parseLlamaSeqState(big.subarray(0, big.length - 1)), "truncated");
  });

  it("trailing bytes", () => {
    const bytes = stateOf("on", 5);
    for (const extra of [1, 3, 4, 8, 100]) {
      const longer = new Uint8Array(bytes.length + extra);
      longer.set(bytes);
      expectStateError(() => parseLlamaSeqState(longer), "trailing_bytes");
    }
  });

  it("garbled fields", () => {
    const bytes = stateOf("off", 5);
    const s = parseLlamaSeqState(bytes);
    const nStreamAt = 12 + 4 * 5;
    const cellCountAt = nStreamAt + 4 + 4 * s.streamIndex!;
    const cellsAt = nStreamAt + 4 + 4 * (s.streamIndex! + 1);
    const vTransAt = cellsAt + 12 * 5;
    expectStateError(() => parseLlamaSeqState(patched(bytes, 8, 0x7fffffff)), "truncated"); // n_token
    expectStateError(() => parseLlamaSeqState(patched(bytes, nStreamAt, 0)), "malformed");
    expectStateError(() => parseLlamaSeqState(patched(bytes, nStreamAt, 100_000)), "malformed");
    expectStateError(() => parseLlamaSeqState(patched(bytes, cellCountAt, 0xffffffff)), "truncated");
    expectStateError(() => parseLlamaSeqState(patched(bytes, cellsAt + 4, 1000)), "malformed"); // n_seq_id
    expectStateError(() => parseLlamaSeqState(patched(bytes, cellsAt + 8, -5 >>> 0)), "malformed"); // seq_id
    expectStateError(() => parseLlamaSeqState(patched(bytes, vTransAt, 7)), "malformed");
    expectStateError(() => parseLlamaSeqState(patched(bytes, vTransAt + 4, 0)), "malformed"); // n_layer
    expectStateError(() => parseLlamaSeqState(patched(bytes, vTransAt + 4, 6))); // one layer too many
    expectStateError(() => parseLlamaSeqState(patched(bytes, vTransAt + 4, 4))); // one layer too few
    expectStateError(() => parseLlamaSeqState(patched(bytes, vTransAt + 8 + 4, 1 << 20))); // K row size
    // flipping v_trans alone leaves a file whose V sections no longer parse as the other layout's
    expectStateError(() => parseLlamaSeqState(patched(bytes, vTransAt, 0)));
  });

  it("writing an inconsistent state", () => {
    const s = parseLlamaSeqState(stateOf("on", 5));
    const shortK: LlamaSeqState = llamaSeqState({
      ...s,
      caches: s.caches.map((c) => ({
        streams: c.streams.map((st) => ({ ...st, layers: st.layers.map((l) => ({ ...l, k: { ...l.k, data: l.k.data.subarray(1) } })) })),
      })),
    });
    expectStateError(() => writeLlamaSeqState(shortK), "malformed");
    const mixed = llamaSeqState({
      ...s,
      caches: s.caches.map((c) => ({
        streams: c.streams.map((st) => ({ ...st, layers: st.layers.map((l, i) => (i === 2 ? { ...l, v: { ...l.v, transposed: true } } : l)) })),
      })),
    });
    expectStateError(() => writeLlamaSeqState(mixed), "malformed");
    expectStateError(() => writeLlamaSeqState(llamaSeqState({ ...s, caches: [] })), "malformed");
  });
});
