// How long the emulated chip takes, from the performance model (src/hardware/performance-model.ts) for the
// model the profile emulates — not the tiny model the real engine runs: a prompt of n tokens takes the
// predicted prefill time of n tokens of that model; a decode step takes the predicted step time for the
// sequences decoding together and the KV they hold. Times are in milliseconds, multiplied by the profile's
// time scale.
import { decodeStepSeconds, prefillSeconds } from "../../hardware/performance-model.ts";
import type { HardwareProfile } from "./profile.ts";

export interface StepTiming {
  /** Milliseconds to prefill one prompt of `tokens` tokens. */
  readonly prefillMs: (tokens: number) => number;
  /** Milliseconds for one decode step of `batch` sequences holding `contextTokens` tokens of KV between them. */
  readonly decodeStepMs: (batch: number, contextTokens: number) => number;
}

export const stepTiming = (profile: HardwareProfile): StepTiming => {
  const opts = { tp: profile.tp, dtype: profile.dtype };
  const scale = profile.timeScale * 1_000;
  return {
    prefillMs: (tokens) => prefillSeconds(profile.chip, profile.model, Math.max(1, tokens), opts) * scale,
    // The model's step time takes one context for every sequence; the mean gives the same KV bytes and
    // attention FLOPs as the actual mix.
    decodeStepMs: (batch, contextTokens) =>
      decodeStepSeconds(profile.chip, profile.model, Math.max(1, batch), Math.round(contextTokens / Math.max(1, batch)), opts) * scale,
  };
};
