// llama.cpp's per-sequence state file ("ggsq", what llama_state_seq_save_file writes and
// LlamaContextSequence.saveStateToFile produces), parsed into its parts and written back byte for byte.
//
// Format as written by the llama.cpp bundled with node-llama-cpp 3.21.1 (llama.cpp release v0.4.0;
// llama_context::state_seq_save_file in src/llama-context.cpp, llama_kv_cache::state_write /
// state_write_meta / state_write_data in src/llama-kv-cache.cpp). Every integer is host-endian, which is
// little-endian on every platform llama.cpp ships for; there is no padding or alignment anywhere.
//
//   u32  magic 0x67677371 ('ggsq')       u32 version (3)
//   u32  n_token                          i32 × n_token  the tokens the caller passed in (node-llama-cpp:
//                                         the sequence's contextTokens; llama.cpp does not tie them to the cells)
//   then one KV cache section per memory module (one for a plain cache, base + SWA for an iSWA cache):
//     u32 n_stream                        1 with a unified KV cache, else the context's sequence count
//     per stream s:
//       u32 cell_count                    0 for every stream but the sequence's own; nothing else follows
//       per cell (in cell-index order):   i32 pos, u32 n_seq_id (=1), [cell ext: i32 x, i32 y, i32 tok
//                                         only for M-RoPE / PLE models], i32 seq_id × n_seq_id
//       u32 v_trans (1 = V transposed: flash attention off)      u32 n_layer
//       per layer: i32 k_type, u64 k_row_bytes, k_row_bytes × cell_count   (row = one cell, all KV heads)
//       V, v_trans = 0, per layer: i32 v_type, u64 v_row_bytes, v_row_bytes × cell_count
//       V, v_trans = 1, per layer: i32 v_type, u32 v_el_bytes, u32 n_embd_v_gqa,
//                                  then for each of the n_embd_v_gqa elements: v_el_bytes × cell_count
//
// A row of K (and of untransposed V) is [kv_head][head_dim]: element h·head_dim + d of the cell. Transposed
// V is the same matrix stored element-major: all cells' element 0, then all cells' element 1, and so on.
import { Data } from "effect";

export const LLAMA_STATE_SEQ_MAGIC = 0x67677371;
export const LLAMA_STATE_SEQ_VERSION = 3;
/** The whole-context session file ('ggsn'), which this module does not read. */
export const LLAMA_SESSION_MAGIC = 0x6767736e;
/** llama.cpp's LLAMA_MAX_SEQ: stream counts are at most this, sequence ids below it. */
const LLAMA_MAX_SEQ = 256;

export type LlamaStateErrorCode =
  | "bad_magic"
  | "unsupported_version"
  | "truncated"
  | "trailing_bytes"
  | "malformed"
  | "unsupported";

/** The bytes are not a llama.cpp sequence state this module understands, or an operation cannot apply. */
export class LlamaStateError extends Data.TaggedError("LlamaStateError")<{
  readonly code: LlamaStateErrorCode;
  readonly message: string;
  /** Byte offset in the input where the problem was found, when it concerns input bytes. */
  readonly offset?: number;
}> {}

/** ggml_type ids (ggml.h) with the names llama.cpp uses; unknown ids print as `type<N>`. */
export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, BF16: 30 } as const;
const GGML_TYPE_NAMES: Record<number, string> = {
  0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0", 9: "q8_1", 10: "q2_K", 11: "q3_K",
  12: "q4_K", 13: "q5_K", 14: "q6_K", 15: "q8_K", 16: "iq2_xxs", 17: "iq2_xs", 18: "iq3_xxs", 19: "iq1_s",
  20: "iq4_nl", 21: "iq3_s", 22: "iq2_s", 23: "iq4_xs", 24: "i8", 25: "i16", 26: "i32", 27: "i64", 28: "f64",
  29: "iq1_m", 30: "bf16", 34: "tq1_0", 35: "tq2_0", 39: "mxfp4", 40: "nvfp4", 41: "q1_0", 42: "q2_0",
};
/** Element sizes of the float types a V cache can be transposed in (block size 1). */
const FLOAT_ELEMENT_BYTES: Record<number, number> = { 0: 4, 1: 2, 30: 2 };

export const ggmlTypeName = (id: number): string => GGML_TYPE_NAMES[id] ?? `type${id}`;

export interface LlamaCellExt {
  readonly x: number;
  readonly y: number;
  readonly tok: number;
}

export interface LlamaCell {
  readonly pos: number;
  readonly seqIds: ReadonlyArray<number>;
  /** Present only in files from models whose cache keeps cell ext (M-RoPE 2D positions, PLE tokens). */
  readonly ext: LlamaCellExt | null;
}

export interface LlamaKState {
  readonly ggmlType: number;
  readonly dtype: string;
  /** Bytes of one cell's K row (all KV heads). */
  readonly rowBytes: number;
  /** cellCount × rowBytes, cell-major (token-major). */
  readonly data: Uint8Array;
}

export interface LlamaVState {
  readonly ggmlType: number;
  readonly dtype: string;
  /** true: element-major (flash attention off); false: cell-major like K (flash attention on). */
  readonly transposed: boolean;
  /** Bytes of one cell's V row; embd × elementBytes when those are known. */
  readonly rowBytes: number;
  /** Bytes per element; stored in the file when transposed, derived from the type otherwise (null if blocked). */
  readonly elementBytes: number | null;
  /** Elements per cell (n_embd_v_gqa = kv heads × head dim); null when it cannot be derived. */
  readonly embd: number | null;
  /** transposed: embd × cellCount × elementBytes; else cellCount × rowBytes. */
  readonly data: Uint8Array;
}

export interface LlamaLayerState {
  readonly k: LlamaKState;
  /** Models whose cache has no V tensors (MLA) are not supported: their files fail to parse. */
  readonly v: LlamaVState;
}

export interface LlamaStreamState {
  readonly index: number;
  readonly cells: ReadonlyArray<LlamaCell>;
  /** null for an empty stream (the file stores nothing but its zero cell count). */
  readonly vTransposed: boolean | null;
  readonly layers: ReadonlyArray<LlamaLayerState>;
}

export interface LlamaKvCacheState {
  /** One entry per stream, empty streams included; its length is n_stream. */
  readonly streams: ReadonlyArray<LlamaStreamState>;
}

export interface LlamaSeqState {
  readonly magic: number;
  readonly version: number;
  /** The token ids stored in the header (what the sequence evaluated). */
  readonly tokens: ReadonlyArray<number>;
  /** Whether cells carry the 12-byte ext record. */
  readonly cellExt: boolean;
  /** One per memory module section, in file order; the writer writes exactly these. */
  readonly caches: ReadonlyArray<LlamaKvCacheState>;
  // Conveniences derived from `caches` (the same objects, not copies):
  /** n_stream of the first cache: 1 for a unified KV cache, else the context's sequence count. */
  readonly nStream: number;
  /** Index of the stream holding the cells in the first cache (the sequence's stream), or null if empty. */
  readonly streamIndex: number | null;
  /** The occupied streams' cells, in file order. */
  readonly cells: ReadonlyArray<LlamaCell>;
  /** Positions of `cells`. */
  readonly positions: ReadonlyArray<number>;
  /** The occupied streams' layers, in file order (model layer order for a plain KV cache). */
  readonly layers: ReadonlyArray<LlamaLayerState>;
  /** V layout of the occupied streams; null when the state holds no cells. */
  readonly vTransposed: boolean | null;
}

export interface ParseOptions {
  /**
   * Whether cells carry the ext record. The file does not say (it depends on the model); by default the
   * parser tries without, then with, and keeps the first reading that accounts for every byte.
   */
  readonly cellExt?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Reading

class Reader {
  offset = 0;
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get remaining(): number {
    return this.bytes.length - this.offset;
  }
  need(n: number, what: string): void {
    if (n > this.remaining) {
      throw new LlamaStateError({
        code: "truncated",
        offset: this.offset,
        message: `llama.cpp sequence state truncated: ${what} needs ${n} bytes at offset ${this.offset}, ${this.remaining} left`,
      });
    }
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.offset, true);
    this.offset += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.offset, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(this.offset, `${what} ${v} is out of range`);
    this.offset += 8;
    return Number(v);
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}

const malformed = (offset: number, message: string) =>
  new LlamaStateError({ code: "malformed", offset, message: `malformed llama.cpp sequence state: ${message} (offset ${offset})` });

const readCells = (r: Reader, cellCount: number, cellExt: boolean): LlamaCell[] => {
  // Every cell takes at least pos + n_seq_id: refuse absurd counts before allocating for them.
  r.need(cellCount * (cellExt ? 20 : 8), `${cellCount} cells`);
  const cells: LlamaCell[] = new Array(cellCount);
  for (let i = 0; i < cellCount; i++) {
    const pos = r.i32("cell pos");
    const at = r.offset;
    const nSeqId = r.u32("cell n_seq_id");
    if (nSeqId > LLAMA_MAX_SEQ) throw malformed(at, `cell ${i} claims ${nSeqId} sequence ids`);
    const ext = cellExt ? { x: r.i32("cell ext x"), y: r.i32("cell ext y"), tok: r.i32("cell ext tok") } : null;
    const seqIds: number[] = [];
    for (let j = 0; j < nSeqId; j++) {
      const sat = r.offset;
      const id = r.i32("cell seq_id");
      if (id < 0 || id >= LLAMA_MAX_SEQ) throw malformed(sat, `cell ${i} has sequence id ${id}`);
      seqIds.push(id);
    }
    cells[i] = { pos, seqIds, ext };
  }
  return cells;
};

const readType = (r: Reader, what: string): number => {
  const at = r.offset;
  const t = r.i32(what);
  if (t < 0 || t >= 1024) throw malformed(at, `${what} ${t} is not a ggml type`);
  return t;
};

const readLayers = (r: Reader, cellCount: number) => {
  const vtAt = r.offset;
  const vTrans = r.u32("v_trans");
  if (vTrans > 1) throw malformed(vtAt, `v_trans is ${vTrans}, not 0 or 1`);
  const nlAt = r.offset;
  const nLayer = r.u32("n_layer");
  if (nLayer === 0) throw malformed(nlAt, "n_layer is 0");
  r.need(nLayer * 24, `${nLayer} layers`); // each layer has a K and a V header of 12 bytes
  const ks: LlamaKState[] = [];
  for (let l = 0; l < nLayer; l++) {
    const ggmlType = readType(r, "k type");
    const rowAt = r.offset;
    const rowBytes = r.u64("k row size");
    if (rowBytes === 0) throw malformed(rowAt, `layer ${l} K row size is 0`);
    const data = r.take(rowBytes * cellCount, `layer ${l} K (${cellCount} × ${rowBytes} bytes)`);
    ks.push({ ggmlType, dtype: ggmlTypeName(ggmlType), rowBytes, data });
  }
  const vs: LlamaVState[] = [];
  for (let l = 0; l < nLayer; l++) {
    const ggmlType = readType(r, "v type");
    const dtype = ggmlTypeName(ggmlType);
    if (vTrans === 0) {
      const rowAt = r.offset;
      const rowBytes = r.u64("v row size");
      if (rowBytes === 0) throw malformed(rowAt, `layer ${l} V row size is 0`);
      const data = r.take(rowBytes * cellCount, `layer ${l} V (${cellCount} × ${rowBytes} bytes)`);
      const el = FLOAT_ELEMENT_BYTES[ggmlType] ?? null;
      const embd = el !== null && rowBytes % el === 0 ? rowBytes / el : null;
      vs.push({ ggmlType, dtype, transposed: false, rowBytes, elementBytes: embd === null ? null : el, embd, data });
    } else {
      const elAt = r.offset;
      const elementBytes = r.u32("v element size");
      if (elementBytes === 0) throw malformed(elAt, `layer ${l} V element size is 0`);
      const embd = r.u32("v n_embd_v_gqa");
      const data = r.take(embd * cellCount * elementBytes, `layer ${l} V (${embd} × ${cellCount} × ${elementBytes} bytes)`);
      vs.push({ ggmlType, dtype, transposed: true, rowBytes: embd * elementBytes, elementBytes, embd, data });
    }
  }
  return { vTransposed: vTrans === 1, layers: ks.map((k, l) => ({ k, v: vs[l]! })) };
};

const readCache = (r: Reader, cellExt: boolean): LlamaKvCacheState => {
  const at = r.offset;
  const nStream = r.u32("n_stream");
  if (nStream === 0 || nStream > LLAMA_MAX_SEQ) throw malformed(at, `n_stream is ${nStream}`);
  const streams: LlamaStreamState[] = [];
  for (let s = 0; s < nStream; s++) {
    const cellCount = r.u32("cell_count");
    if (cellCount === 0) {
      streams.push({ index: s, cells: [], vTransposed: null, layers: [] });
      continue;
    }
    const cells = readCells(r, cellCount, cellExt);
    const { vTransposed, layers } = readLayers(r, cellCount);
    streams.push({ index: s, cells, vTransposed, layers });
  }
  return { streams };
};

const parseWith = (bytes: Uint8Array, cellExt: boolean): LlamaSeqState => {
  const r = new Reader(bytes);
  const magic = r.u32("magic");
  if (magic !== LLAMA_STATE_SEQ_MAGIC) {
    throw new LlamaStateError({
      code: "bad_magic",
      offset: 0,
      message: magic === LLAMA_SESSION_MAGIC
        ? "not a llama.cpp sequence state: this is a whole-context session file ('ggsn')"
        : `not a llama.cpp sequence state: magic 0x${magic.toString(16).padStart(8, "0")}, expected 0x67677371 ('ggsq')`,
    });
  }
  const version = r.u32("version");
  if (version !== LLAMA_STATE_SEQ_VERSION) {
    throw new LlamaStateError({
      code: "unsupported_version",
      offset: 4,
      message: `llama.cpp sequence state version ${version} is not supported (expected ${LLAMA_STATE_SEQ_VERSION})`,
    });
  }
  const nToken = r.u32("n_token");
  r.need(nToken * 4, `${nToken} tokens`);
  const tokens: number[] = new Array(nToken);
  for (let i = 0; i < nToken; i++) tokens[i] = r.i32("token");
  const caches: LlamaKvCacheState[] = [readCache(r, cellExt)];
  // An iSWA cache writes a second section (base, then SWA); anything else after the first is an error.
  while (r.remaining > 0) {
    const at = r.offset;
    try {
      caches.push(readCache(r, cellExt));
    } catch (e) {
      throw new LlamaStateError({
        code: "trailing_bytes",
        offset: at,
        message: `llama.cpp sequence state has ${bytes.length - at} bytes after its KV cache that are not another cache section (${e instanceof Error ? e.message : String(e)})`,
      });
    }
  }
  return assemble({ magic, version, tokens, cellExt, caches });
};

export type LlamaSeqStateParts = Pick<LlamaSeqState, "magic" | "version" | "tokens" | "cellExt" | "caches">;

/** A complete state from the parts a file is made of (fills in the derived conveniences). */
export const llamaSeqState = (parts: LlamaSeqStateParts): LlamaSeqState => assemble(parts);

function assemble(parts: LlamaSeqStateParts): LlamaSeqState {
  const occupied = parts.caches.flatMap((c) => c.streams.filter((s) => s.cells.length > 0));
  const first = parts.caches[0]?.streams.find((s) => s.cells.length > 0);
  const cells = occupied.flatMap((s) => s.cells);
  const layouts = new Set(occupied.map((s) => s.vTransposed));
  return {
    magic: parts.magic,
    version: parts.version,
    tokens: parts.tokens,
    cellExt: parts.cellExt,
    caches: parts.caches,
    nStream: parts.caches[0]?.streams.length ?? 0,
    streamIndex: first?.index ?? null,
    cells,
    positions: cells.map((c) => c.pos),
    layers: occupied.flatMap((s) => s.layers),
    vTransposed: layouts.size === 1 ? [...layouts][0]! : null,
  };
}

/**
 * Parses a llama.cpp sequence state file (the bytes of LlamaContextSequence.saveStateToFile). Data arrays
 * are views into `bytes`, not copies. Throws LlamaStateError on a bad magic or version, truncation, trailing
 * bytes or values no llama.cpp writes.
 */
export const parseLlamaSeqState = (bytes: Uint8Array, options: ParseOptions = {}): LlamaSeqState => {
  if (options.cellExt !== undefined) return parseWith(bytes, options.cellExt);
  try {
    return parseWith(bytes, false);
  } catch (withoutExt) {
    if (!(withoutExt instanceof LlamaStateError) || withoutExt.code === "bad_magic" || withoutExt.code === "unsupported_version") {
      throw withoutExt;
    }
    try {
      return parseWith(bytes, true);
    } catch {
      throw withoutExt;
    }
  }
};

// ---------------------------------------------------------------------------------------------------------
// Writing

const inconsistent = (message: string) =>
  new LlamaStateError({ code: "malformed", message: `cannot write llama.cpp sequence state: ${message}` });

const checkStream = (s: LlamaStreamState, cellExt: boolean) => {
  const n = s.cells.length;
  if (n === 0) return;
  if (s.vTransposed === null) throw inconsistent(`stream ${s.index} has cells but no V layout`);
  if (s.layers.length === 0) throw inconsistent(`stream ${s.index} has cells but no layers`);
  for (const c of s.cells) {
    if ((c.ext !== null) !== cellExt) throw inconsistent(`stream ${s.index}: cell ext presence differs from cellExt=${cellExt}`);
  }
  s.layers.forEach(({ k, v }, l) => {
    if (k.data.length !== k.rowBytes * n) throw inconsistent(`stream ${s.index} layer ${l}: K holds ${k.data.length} bytes, expected ${n} × ${k.rowBytes}`);
    if (v.transposed !== s.vTransposed) throw inconsistent(`stream ${s.index} layer ${l}: V transposed=${v.transposed} in a stream with v_trans=${s.vTransposed}`);
    if (v.transposed) {
      if (v.elementBytes === null || v.embd === null) throw inconsistent(`stream ${s.index} layer ${l}: transposed V needs elementBytes and embd`);
      if (v.data.length !== v.embd * n * v.elementBytes) throw inconsistent(`stream ${s.index} layer ${l}: V holds ${v.data.length} bytes, expected ${v.embd} × ${n} × ${v.elementBytes}`);
    } else if (v.data.length !== v.rowBytes * n) {
      throw inconsistent(`stream ${s.index} layer ${l}: V holds ${v.data.length} bytes, expected ${n} × ${v.rowBytes}`);
    }
  });
};

const streamSize = (s: LlamaStreamState, cellExt: boolean): number => {
  let size = 4; // cell_count
  if (s.cells.length === 0) return size;
  for (const c of s.cells) size += 8 + (cellExt ? 12 : 0) + 4 * c.seqIds.length;
  size += 8; // v_trans, n_layer
  for (const { k, v } of s.layers) size += 12 + k.data.length + 12 + v.data.length;
  return size;
};

/** Serialises a parsed (or transformed) state exactly as llama.cpp would write it. */
export const writeLlamaSeqState = (state: LlamaSeqStateParts): Uint8Array => {
  if (state.caches.length === 0) throw inconsistent("no KV cache section");
  let size = 12 + 4 * state.tokens.length;
  for (const cache of state.caches) {
    if (cache.streams.length === 0) throw inconsistent("a KV cache section without streams");
    size += 4;
    for (const s of cache.streams) {
      checkStream(s, state.cellExt);
      size += streamSize(s, state.cellExt);
    }
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let o = 0;
  const u32 = (v: number) => (dv.setUint32(o, v, true), (o += 4));
  const i32 = (v: number) => (dv.setInt32(o, v, true), (o += 4));
  const u64 = (v: number) => (dv.setBigUint64(o, BigInt(v), true), (o += 8));
  const raw = (b: Uint8Array) => (out.set(b, o), (o += b.length));
  u32(state.magic);
  u32(state.version);
  u32(state.tokens.length);
  for (const t of state.tokens) i32(t);
  for (const cache of state.caches) {
    u32(cache.streams.length);
    for (const s of cache.streams) {
      u32(s.cells.length);
      if (s.cells.length === 0) continue;
      for (const c of s.cells) {
        i32(c.pos);
        u32(c.seqIds.length);
        if (c.ext) (i32(c.ext.x), i32(c.ext.y), i32(c.ext.tok));
        for (const id of c.seqIds) i32(id);
      }
      u32(s.vTransposed ? 1 : 0);
      u32(s.layers.length);
      for (const { k } of s.layers) (i32(k.ggmlType), u64(k.rowBytes), raw(k.data));
      for (const { v } of s.layers) {
        i32(v.ggmlType);
        if (v.transposed) (u32(v.elementBytes!), u32(v.embd!));
        else u64(v.rowBytes);
        raw(v.data);
      }
    }
  }
  if (o !== size) throw inconsistent(`wrote ${o} bytes, sized ${size}`);
  return out;
};

// ---------------------------------------------------------------------------------------------------------
// V layout

/** Transposes an (rows × cols) matrix of `el`-byte elements. */
const transposeBytes = (src: Uint8Array, rows: number, cols: number, el: number): Uint8Array => {
  const dst = new Uint8Array(src.length);
  if (el === 2 || el === 4) {
    // Work on aligned copies so typed arrays move whole elements.
    const a = new Uint8Array(src);
    const S = el === 2 ? new Uint16Array(a.buffer) : new Uint32Array(a.buffer);
    const D = el === 2 ? new Uint16Array(dst.buffer) : new Uint32Array(dst.buffer);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) D[c * rows + r] = S[base + c]!;
    }
    return dst;
  }
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) dst.set(src.subarray((r * cols + c) * el, (r * cols + c + 1) * el), (c * rows + r) * el);
  }
  return dst;
};

const convertV = (v: LlamaVState, cellCount: number, transposed: boolean, where: string): LlamaVState => {
  if (v.transposed === transposed) return v;
  const el = FLOAT_ELEMENT_BYTES[v.ggmlType];
  if (el === undefined) {
    throw new LlamaStateError({
      code: "unsupported",
      message: `${where}: V of type ${v.dtype} cannot change layout (only f32, f16 and bf16 have a transposed V)`,
    });
  }
  if (v.transposed) {
    if (v.elementBytes !== el) {
      throw new LlamaStateError({ code: "malformed", message: `${where}: V element size ${v.elementBytes} does not match type ${v.dtype}` });
    }
    const embd = v.embd!;
    // element-major (embd × cells) → cell-major (cells × embd)
    return { ...v, transposed: false, rowBytes: embd * el, elementBytes: el, embd, data: transposeBytes(v.data, embd, cellCount, el) };
  }
  if (v.rowBytes % el !== 0) {
    throw new LlamaStateError({ code: "malformed", message: `${where}: V row of ${v.rowBytes} bytes is not a whole number of ${v.dtype} elements` });
  }
  const embd = v.rowBytes / el;
  return { ...v, transposed: true, rowBytes: v.rowBytes, elementBytes: el, embd, data: transposeBytes(v.data, cellCount, embd, el) };
};

/**
 * The same state with V stored transposed (the layout of a context with flash attention off) or not (flash
 * attention on). Exact: elements are moved, never converted. Returns new objects; unchanged data is shared.
 */
export const setVTransposed = (state: LlamaSeqState, transposed: boolean): LlamaSeqState =>
  assemble({
    ...state,
    caches: state.caches.map((cache, ci) => ({
      streams: cache.streams.map((s) =>
        s.cells.length === 0
          ? s
          : {
            ...s,
            vTransposed: transposed,
            layers: s.layers.map(({ k, v }, l) => ({
              k,
              v: convertV(v, s.cells.length, transposed, `cache ${ci} stream ${s.index} layer ${l}`),
            })),
          }
      ),
    })),
  });

// ---------------------------------------------------------------------------------------------------------
// Token-major views

export interface KvShape {
  /** KV heads per layer; give this or headDim. */
  readonly kvHeads?: number;
  /** Elements per head; give this or kvHeads. */
  readonly headDim?: number;
}

export interface TokenMajorKv {
  readonly dtype: "f32" | "f16" | "bf16";
  /** Cells in file order (see `positions`), one per token of the sequence. */
  readonly tokens: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** The token position of each row. */
  readonly positions: ReadonlyArray<number>;
  /**
   * tokens × kvHeads × headDim, index (t·kvHeads + h)·headDim + d. f16/bf16 as raw 16-bit patterns. A view
   * into the state's bytes when the layout and alignment allow it, else a copy.
   */
  readonly data: Float32Array | Uint16Array;
}

export interface TokenMajorLayer {
  readonly k: TokenMajorKv;
  readonly v: TokenMajorKv;
}

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const typedOf = (bytes: Uint8Array, el: number): Float32Array | Uint16Array => {
  const n = bytes.length / el;
  if (HOST_LE && bytes.byteOffset % el === 0) {
    return el === 4 ? new Float32Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (el === 4) {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true);
  return out;
};

const shapeOf = (embd: number, shape: KvShape, where: string) => {
  const { kvHeads, headDim } = shape;
  const h = kvHeads ?? (headDim ? embd / headDim : NaN);
  const d = headDim ?? (kvHeads ? embd / kvHeads : NaN);
  if (!Number.isInteger(h) || !Number.isInteger(d) || h < 1 || d < 1 || h * d !== embd) {
    throw new LlamaStateError({
      code: "unsupported",
      message: `${where}: ${embd} elements per token do not split into kvHeads=${kvHeads} × headDim=${headDim}`,
    });
  }
  return { kvHeads: h, headDim: d };
};

const floatType = (ggmlType: number, dtype: string, where: string) => {
  const el = FLOAT_ELEMENT_BYTES[ggmlType];
  if (el === undefined) {
    throw new LlamaStateError({ code: "unsupported", message: `${where}: ${dtype} has no token-major element view` });
  }
  return { el, dtype: dtype as TokenMajorKv["dtype"] };
};

/** One layer's K as tokens × kvHeads × headDim. */
export const tokenMajorK = (layer: LlamaLayerState, positions: ReadonlyArray<number>, shape: KvShape): TokenMajorKv => {
  const { el, dtype } = floatType(layer.k.ggmlType, layer.k.dtype, "K");
  const tokens = positions.length;
  const embd = layer.k.rowBytes / el;
  if (!Number.isInteger(embd) || layer.k.data.length !== tokens * layer.k.rowBytes) {
    throw new LlamaStateError({ code: "malformed", message: `K holds ${layer.k.data.length} bytes, not ${tokens} rows of ${layer.k.rowBytes}` });
  }
  return { dtype, tokens, ...shapeOf(embd, shape, "K"), positions, data: typedOf(layer.k.data, el) };
};

/** One layer's V as tokens × kvHeads × headDim (a transposed V is transposed into a copy). */
export const tokenMajorV = (layer: LlamaLayerState, positions: ReadonlyArray<number>, shape: KvShape): TokenMajorKv => {
  const { el, dtype } = floatType(layer.v.ggmlType, layer.v.dtype, "V");
  const tokens = positions.length;
  const v = convertV(layer.v, tokens, false, "V");
  const embd = v.rowBytes / el;
  if (!Number.isInteger(embd) || v.data.length !== tokens * v.rowBytes) {
    throw new LlamaStateError({ code: "malformed", message: `V holds ${v.data.length} bytes, not ${tokens} rows of ${v.rowBytes}` });
  }
  return { dtype, tokens, ...shapeOf(embd, shape, "V"), positions, data: typedOf(v.data, el) };
};

/**
 * Every layer's K and V as token-major arrays, for a state whose cells sit in one stream of one cache (any
 * state llama.cpp saves for a single sequence of a plain KV cache).
 */
export const tokenMajorLayers = (state: LlamaSeqState, shape: KvShape): TokenMajorLayer[] => {
  const occupied = state.caches.flatMap((c) => c.streams.filter((s) => s.cells.length > 0));
  if (occupied.length === 0) return [];
  if (occupied.length > 1) {
    throw new LlamaStateError({ code: "unsupported", message: `the state's cells span ${occupied.length} streams or caches` });
  }
  const stream = occupied[0]!;
  const positions = stream.cells.map((c) => c.pos);
  return stream.layers.map((layer) => ({ k: tokenMajorK(layer, positions, shape), v: tokenMajorV(layer, positions, shape) }));
};
