// The seam between the runtime and a vendor's inference stack. Actors only see this interface: a prefill
// worker prefills and exports KV, a decode worker imports KV and decodes; the monolithic `generate` is the
// uninterrupted reference run that disaggregated output must equal.
import { Data, Effect, type Scope } from "effect";

export type FaultClass = "transient" | "resource" | "device-reset" | "fatal" | "interconnect";

/** A fault raised by an engine driver, in the vendor's own terms plus the class that decides the policy. */
export class DriverFault extends Data.TaggedError("DriverFault")<{
  readonly vendor: string;
  readonly code: string;
  readonly message: string;
  readonly faultClass: FaultClass;
}> {}

export interface EngineInfo {
  readonly vendor: string;
  readonly device: string;
  /** Model id clients name in `model`; the GGUF file name without extension for llama.cpp. */
  readonly model: string;
  /** True when timings or formats are emulated from a hardware model rather than measured on the device. */
  readonly emulated: boolean;
  /** Identifies the KV byte layout this engine exports and accepts (incompatible formats never mix). */
  readonly kvFormat: string;
  /** Maximum tokens (prompt + generated) one sequence can hold. */
  readonly contextSize: number;
  /** Sequences decoded together in one batch. */
  readonly sequences: number;
  readonly eosToken: number;
}

/** A sequence holding a KV cache inside the engine; released when its Scope closes. */
export interface LiveSequence {
  /** Tokens whose KV the sequence holds. */
  readonly length: number;
  /** Serialises the sequence's KV cache (engine-native format, see EngineInfo.kvFormat). */
  readonly exportKv: Effect.Effect<Uint8Array, DriverFault>;
  /**
   * Feeds `token`, then greedily generates until EOS or `maxNewTokens`; `onToken` sees each new token in
   * order with its text. Returns the number of tokens generated and why it stopped.
   */
  readonly decode: (
    token: number,
    maxNewTokens: number,
    onToken: (token: number, text: string) => Effect.Effect<void>,
  ) => Effect.Effect<{ readonly tokens: number; readonly finishReason: "stop" | "length" }, DriverFault>;
}

/** What the engine did with prompts so far: how many tokens it evaluated and how many it found cached. */
export interface EngineCounters {
  readonly promptTokens: number;
  readonly promptTokensEvaluated: number;
  readonly promptTokensReused: number;
}

export interface Engine {
  readonly info: EngineInfo;
  readonly counters: Effect.Effect<EngineCounters>;
  /** Prompt text → token ids, BOS included. */
  readonly tokenize: (text: string) => Effect.Effect<ReadonlyArray<number>>;
  /** Token ids → text; `previous` (the tokens before them) makes word boundaries come out right. */
  readonly detokenize: (tokens: ReadonlyArray<number>, previous?: ReadonlyArray<number>) => string;
  /** Runs the prompt; returns the sequence holding its KV and the first generated token (greedy). */
  readonly prefill: (
    tokens: ReadonlyArray<number>,
  ) => Effect.Effect<{ readonly sequence: LiveSequence; readonly firstToken: number }, DriverFault, Scope.Scope>;
  /** Loads an exported KV cache into a free sequence. */
  readonly importKv: (bytes: Uint8Array) => Effect.Effect<LiveSequence, DriverFault, Scope.Scope>;
  /** The monolithic reference: prompt and every generated token in one uninterrupted sequence. */
  readonly generate: (
    tokens: ReadonlyArray<number>,
    maxTokens: number,
    onToken?: (token: number) => void,
  ) => Effect.Effect<ReadonlyArray<number>, DriverFault>;
}

/**
 * The monolithic reference built from an engine's own prefill and decode: one sequence that never leaves the
 * process. Engines implement `generate` with it so the reference runs exactly the disaggregated path's steps.
 */
export const generateInOneSequence = (
  prefill: Engine["prefill"],
  eosToken: number,
): Engine["generate"] =>
(tokens, maxTokens, onToken) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { sequence, firstToken } = yield* prefill(tokens);
      if (firstToken === eosToken || maxTokens < 1) return [];
      const out = [firstToken];
      onToken?.(firstToken);
      yield* sequence.decode(firstToken, maxTokens - 1, (t) =>
        Effect.sync(() => {
          out.push(t);
          onToken?.(t);
        }));
      return out;
    }),
  );
