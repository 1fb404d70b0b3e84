// The real engine: llama.cpp through node-llama-cpp on the CPU. One context with a fixed number of
// sequences; node-llama-cpp merges the pending tokens of all active sequences into one llama_decode per
// step, which is continuous batching: sequences join and leave between steps. KV export/import is
// llama.cpp's per-sequence state save/load (through a private temp directory).
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Queue, Scope, Semaphore } from "effect";
import { getLlama, LlamaLogLevel, type LlamaContextSequence, type Token } from "node-llama-cpp";
import { DriverFault, type Engine, type FaultClass, type LiveSequence } from "./engine.ts";
import { modelIdOf } from "./model-resolution.ts";
import { formatName } from "../kv/llama-format.ts";

export interface LlamaCppOptions {
  readonly modelPath: string;
  /** Tokens per sequence (prompt + generated). */
  readonly contextSize?: number;
  /** Sequences per context; prefill and decode must agree, llama.cpp state only loads into the same count. */
  readonly sequences?: number;
  /** CPU threads; 1 is fastest on small machines. */
  readonly threads?: number;
  /** Changes the KV layout (V transposed when off), so it is part of the KV format. */
  readonly flashAttention?: boolean;
  /**
   * Most sequences that share one decode step. llama.cpp's CPU matmul takes another kernel from 4 columns
   * on, and greedy output then drifts from the single-sequence run (measured with the test model: 0 of 199
   * answers differ at 2–3 wide, 16 of 24 at 8 wide). 3 keeps every answer exact; raise it for throughput.
   */
  readonly maxDecodeBatch?: number;
}

export const LLAMA_DEFAULTS = { contextSize: 512, sequences: 8, threads: 1, flashAttention: true, maxDecodeBatch: 3 } as const;

const VENDOR = "cpu";

const fault = (code: string, faultClass: FaultClass) => (cause: unknown) =>
  new DriverFault({ vendor: VENDOR, code, faultClass, message: cause instanceof Error ? cause.message : String(cause) });

export const makeLlamaCppEngine = (options: LlamaCppOptions): Effect.Effect<Engine, DriverFault, Scope.Scope> =>
  Effect.gen(function* () {
    const contextSize = options.contextSize ?? LLAMA_DEFAULTS.contextSize;
    const sequences = options.sequences ?? LLAMA_DEFAULTS.sequences;
    const threads = options.threads ?? LLAMA_DEFAULTS.threads;
    const flashAttention = options.flashAttention ?? LLAMA_DEFAULTS.flashAttention;
    const maxDecodeBatch = options.maxDecodeBatch ?? LLAMA_DEFAULTS.maxDecodeBatch;

    const llama = yield* Effect.tryPromise({
      try: () => getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads }),
      catch: fault("backend_unavailable", "fatal"),
    });
    const model = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => llama.loadModel({ modelPath: options.modelPath }), catch: fault("model_load_failed", "fatal") }),
      (m) => Effect.promise(() => m.dispose()),
    );
    const context = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => model.createContext({ contextSize, sequences, threads, flashAttention, batchSize: contextSize }),
        catch: fault("allocation_failed", "resource"),
      }),
      (c) => Effect.promise(() => c.dispose()),
    );
    const stateDir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "tandem-kv-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
    );
    // Sequences are created once and recycled (history cleared) rather than disposed: node-llama-cpp
    // reclaims a disposed sequence id asynchronously, so a fresh getSequence() right after can fail.
    const free = yield* Queue.bounded<LlamaContextSequence>(sequences);
    for (let i = 0; i < sequences; i++) Queue.offerUnsafe(free, context.getSequence());
    // Prompts are evaluated one at a time: llama.cpp splits a batch of several sequences into equal-length
    // ubatches, so a prompt batched with another can have its last tokens evaluated in a different shape,
    // and its greedy output would then depend on what it shared a batch with. Decode steps (one token per
    // sequence) still batch together.
    const promptLock = yield* Semaphore.make(1);
    const decodeSlots = yield* Semaphore.make(maxDecodeBatch);
    let stateFileCounter = 0;
    const eosToken = model.tokens.eos ?? 2;

    /** An empty sequence for the lifetime of the caller's scope. */
    const acquireSequence = Effect.acquireRelease(
      Queue.take(free),
      (seq) =>
        Effect.promise(() => seq.clearHistory().catch(() => undefined)).pipe(
          Effect.andThen(Queue.offer(free, seq)),
        ),
    );

    const detokenize = (tokens: ReadonlyArray<number>, previous: ReadonlyArray<number> = []) =>
      model.detokenize(tokens as Token[], false, previous.slice(-8) as Token[]);

    /** Greedy generation from `input`; stops at EOG or after `limit` tokens. */
    const generateFrom = (
      seq: LlamaContextSequence,
      input: ReadonlyArray<number>,
      limit: number,
      onToken: (token: number) => Effect.Effect<void>,
    ) =>
      Effect.acquireUseRelease(
        Effect.sync(() => seq.evaluate(input as Token[], { temperature: 0 })),
        (iterator) =>
          Effect.gen(function* () {
            let produced = 0;
            while (produced < limit) {
              const step = yield* Effect.tryPromise({ try: () => iterator.next(), catch: fault("decode_failed", "transient") });
              if (step.done) return { tokens: produced, finishReason: "stop" as const };
              if (model.isEogToken(step.value)) return { tokens: produced, finishReason: "stop" as const };
              produced++;
              yield* onToken(step.value);
            }
            return { tokens: produced, finishReason: "length" as const };
          }),
        (iterator) => Effect.promise(() => iterator.return().then(() => undefined, () => undefined)),
      );

    const liveSequence = (seq: LlamaContextSequence): LiveSequence => ({
      get length() {
        return seq.nextTokenIndex;
      },
      exportKv: Effect.gen(function* () {
        const file = join(stateDir, `export-${stateFileCounter++}.bin`);
        yield* Effect.tryPromise({ try: () => seq.saveStateToFile(file), catch: fault("state_save_failed", "transient") });
        return yield* Effect.tryPromise({
          try: () => readFile(file).then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)),
          catch: fault("state_save_failed", "transient"),
        }).pipe(Effect.ensuring(Effect.promise(() => unlink(file).catch(() => undefined))));
      }),
      decode: (token, maxNewTokens, onToken) =>
        decodeSlots.withPermits(1)(
          generateFrom(seq, [token], maxNewTokens, (t) => onToken(t, detokenize([t], seq.contextTokens.slice(0, -1)))),
        ),
    });

    const prefill = (tokens: ReadonlyArray<number>) =>
      Effect.gen(function* () {
        const seq = yield* acquireSequence;
        let firstToken = eosToken;
        yield* promptLock.withPermits(1)(generateFrom(seq, tokens, 1, (t) => Effect.sync(() => void (firstToken = t))));
        return { sequence: liveSequence(seq), firstToken };
      });

    const engine: Engine = {
      info: {
        vendor: VENDOR,
        device: "llama.cpp-cpu",
        model: modelIdOf(options.modelPath),
        emulated: false,
        kvFormat: formatName({ model: modelIdOf(options.modelPath), sequences, flashAttention }),
        contextSize,
        sequences,
        eosToken,
      },
      tokenize: (text) => Effect.sync(() => [...(model.tokens.bos === null ? [] : [model.tokens.bos]), ...model.tokenize(text, false)]),
      detokenize,
      prefill,
      importKv: (bytes) =>
        Effect.gen(function* () {
          const seq = yield* acquireSequence;
          const file = join(stateDir, `import-${stateFileCounter++}.bin`);
          yield* Effect.tryPromise({
            try: async () => {
              await writeFile(file, bytes);
              await seq.loadStateFromFile(file, { acceptRisk: true });
            },
            catch: fault("state_load_rejected", "fatal"),
          }).pipe(Effect.ensuring(Effect.promise(() => unlink(file).catch(() => undefined))));
          return liveSequence(seq);
        }),
      // The same prefill and decode as the disaggregated path, in one sequence that never leaves this process.
      generate: (tokens, maxTokens, onToken) =>
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
        ),
    };
    return engine;
  });
