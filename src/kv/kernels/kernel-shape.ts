// The geometry every layout kernel works on: one plane (K or V) of one layer, as a run of equal blocks.

export interface KernelShape {
  readonly blocks: number;
  /** Tokens per block. */
  readonly page: number;
  readonly heads: number;
  readonly headDim: number;
  /** Bytes per element: 1 (fp8), 2 (f16, bf16) or 4 (f32). */
  readonly elemBytes: 1 | 2 | 4;
  /** Tokens holding KV; kernels read only these and write zeros in their place past them. */
  readonly tokens: number;
}

/** Tokens of block `b` that hold KV. */
export const validTokens = (s: KernelShape, b: number): number => Math.max(0, Math.min(s.page, s.tokens - b * s.page));

export const shapeBlockBytes = (s: KernelShape): number => s.page * s.heads * s.headDim * s.elemBytes;
