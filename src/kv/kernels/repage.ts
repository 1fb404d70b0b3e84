// Re-paging: the same tokens cut into blocks of another size (vLLM 16 ↔ Gaudi 128 ↔ SGLang 1 ↔ TensorRT-LLM
// 32). Token-major blocks are plain token rows end to end, so re-paging them is one copy; head-major
// blocks move each head's run of tokens that stays inside one source block and one destination page.
import { runCopier } from "./copy-run.ts";

export interface RepageShape {
  readonly order: "NHD" | "HND";
  readonly heads: number;
  readonly headDim: number;
  readonly elemBytes: 1 | 2 | 4;
  readonly tokens: number;
  readonly fromPage: number;
  readonly toPage: number;
}

/** Bytes of a plane of `tokens` tokens cut into `page`-token blocks. */
const pagedBytes = (s: RepageShape, page: number): number =>
  Math.ceil(s.tokens / page) * page * s.heads * s.headDim * s.elemBytes;

export const repage = (src: Uint8Array, dst: Uint8Array, s: RepageShape): void => {
  const copy = runCopier(src, dst);
  const row = s.headDim * s.elemBytes;
  const end = pagedBytes(s, s.toPage);
  if (s.order === "NHD") {
    const used = s.tokens * s.heads * row;
    copy(0, 0, used);
    dst.fill(0, used, end);
    return;
  }
  const { fromPage: P, toPage: Q, heads } = s;
  for (let p = 0; p * Q < s.tokens; p++) {
    const first = p * Q;
    const last = Math.min(s.tokens, first + Q);
    for (let h = 0; h < heads; h++) {
      const pageHead = (p * heads + h) * Q;
      for (let t = first; t < last; ) {
        const block = Math.floor(t / P);
        const within = t - block * P;
        const run = Math.min(P - within, last - t);
        copy(((block * heads + h) * P + within) * row, (pageHead + t - first) * row, run * row);
        t += run;
      }
      if (last - first < Q) dst.fill(0, (pageHead + last - first) * row, (pageHead + Q) * row);
    }
  }
};
