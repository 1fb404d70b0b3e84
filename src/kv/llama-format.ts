// Names llama.cpp's per-sequence KV state format and decides what it takes to move it between two engines:
// nothing (same format), a V-transpose (flash attention on one side only), or nothing can (another model or
// sequence count) — in which case the refusal names both formats.

export interface LlamaStateFormat {
  readonly model: string;
  /** Sequences per context: llama.cpp loads a state only into a context with the same count. */
  readonly sequences: number;
  /** Flash attention stores V token-major; without it V is transposed. */
  readonly flashAttention: boolean;
}

const PREFIX = "llama.cpp-seq-state";

export const formatName = (f: LlamaStateFormat) =>
  `${PREFIX}/${f.model}/seqs=${f.sequences}/fa=${f.flashAttention ? 1 : 0}`;

export const parseFormatName = (name: string): LlamaStateFormat | undefined => {
  const match = /^llama\.cpp-seq-state\/(.+)\/seqs=(\d+)\/fa=([01])$/.exec(name);
  return match ? { model: match[1]!, sequences: Number(match[2]), flashAttention: match[3] === "1" } : undefined;
};

export type StateTranslation =
  | { readonly _tag: "Identity" }
  | { readonly _tag: "TransposeV"; readonly toTransposed: boolean }
  | { readonly _tag: "Refused"; readonly reason: string };

/** How KV in format `from` becomes loadable by an engine whose format is `to`. */
export const planStateTranslation = (from: string, to: string): StateTranslation => {
  if (from === to) return { _tag: "Identity" };
  const a = parseFormatName(from);
  const b = parseFormatName(to);
  const refuse = (why: string): StateTranslation => ({ _tag: "Refused", reason: why });
  if (a === undefined || b === undefined) return refuse("unknown format");
  if (a.model !== b.model) return refuse("different models");
  if (a.sequences !== b.sequences) return refuse("different sequence counts per context");
  return { _tag: "TransposeV", toTransposed: !b.flashAttention };
};

/** True when KV can move from `from` to `to`, translated or not. */
export const canMoveState = (from: string, to: string) => planStateTranslation(from, to)._tag !== "Refused";
