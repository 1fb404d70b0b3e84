// Turns KV received in the sender's llama.cpp state format into the receiver's, or refuses with both names.
import { KvFormatError } from "./kv-format-error.ts";
import { planStateTranslation } from "./llama-format.ts";
import { parseLlamaSeqState, setVTransposed, writeLlamaSeqState } from "./llama-state.ts";

export const translateState = (bytes: Uint8Array, from: string, to: string): Uint8Array => {
  const plan = planStateTranslation(from, to);
  switch (plan._tag) {
    case "Identity":
      return bytes;
    case "Refused":
      throw new KvFormatError(from, to, plan.reason);
    case "TransposeV":
      try {
        return writeLlamaSeqState(setVTransposed(parseLlamaSeqState(bytes), plan.toTransposed));
      } catch (error) {
        throw new KvFormatError(from, to, error instanceof Error ? error.message : String(error));
      }
  }
};
