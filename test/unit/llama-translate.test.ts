import { describe, expect, it } from "vitest";
import { canMoveState, formatName, parseFormatName, planStateTranslation } from "../../src/kv/llama-format.ts";
import { KvFormatError } from "../../src/kv/kv-format-error.ts";
import { translateState } from "../../src/kv/llama-translate.ts";

const fa1 = formatName({ model: "m", sequences: 8, flashAttention: true });
const fa0 = formatName({ model: "m", sequences: 8, flashAttention: false });

describe("llama.cpp state format negotiation", () => {
  it("round-trips format names", () => {
    expect(parseFormatName(fa1)).toEqual({ model: "m", sequences: 8, flashAttention: true });
    expect(parseFormatName("vllm-flash/whatever")).toBeUndefined();
  });

  it("plans nothing for equal formats and a V transpose across flash-attention settings", () => {
    expect(planStateTranslation(fa1, fa1)).toEqual({ _tag: "Identity" });
    expect(planStateTranslation(fa1, fa0)).toEqual({ _tag: "TransposeV", toTransposed: true });
    expect(planStateTranslation(fa0, fa1)).toEqual({ _tag: "TransposeV", toTransposed: false });
  });

  it("refuses another model, another sequence count or an unknown format, and the error names both formats", () => {
    const other = formatName({ model: "other", sequences: 8, flashAttention: true });
    const seqs4 = formatName({ model: "m", sequences: 4, flashAttention: true });
    for (const [from, to] of [[fa1, other], [fa1, seqs4], ["mystery", fa1]] as const) {
      const plan = planStateTranslation(from, to);
      expect(plan._tag).toBe("Refused");
      expect(canMoveState(from, to)).toBe(false);
      expect(() => translateState(new Uint8Array(8), from, to)).toThrow(KvFormatError);
      expect(() => translateState(new Uint8Array(8), from, to)).toThrow(`KV ${from} → ${to}`);
    }
  });

  it("refuses bytes that are not a llama.cpp state instead of passing them through", () => {
    expect(() => translateState(new Uint8Array([1, 2, 3, 4]), fa1, fa0)).toThrow(/KV .*fa=1 → .*fa=0/);
  });
});
