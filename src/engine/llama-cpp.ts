// The real engine: llama.cpp through node-llama-cpp on the CPU. One context with a fixed number of
// sequences; node-llama-cpp merges the pending tokens of all active sequences into one llama_decode per
// step, which is continuous batching: sequences join and leave between steps. KV export/import is
// llama.cpp's per-sequence state save/load (through a private temp directory).
import { mkdtempSync, rmSync } from "node:fs";
import { readFile, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Scope, Semaphore } from "effect";
import { getLlama, LlamaLogLevel, type LlamaContextSequence, type Token } from "node-llama-cpp";
import { DriverFault, type Engine, type FaultClass, generateInOneSequence, type LiveSequence } from "./engine.ts";
import { modelIdOf } from "./model-resolution.ts";
import { classifyCpu } from "./faults/cpu-llama.ts";
import { UNKNOWN_CODE } from "./faults/rules.ts";
import type { Settings } from "../runtime/settings.ts";
import { formatName } from "../kv/llama-format.ts";
import { blockHashes, sharedBlocks } from "../kv/prefix-hash.ts";

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
  /**
   * Keep each sequence's KV after use and start a new prompt on the free sequence that shares the longest
   * prefix with it (16-token blocks), evaluating only the rest. Free sequences are reused least recently
   * used first, which is the eviction order. Meant for prefill-only engines: erasing a reused sequence's tail
   * waits for the context's current batch, which an engine that also decodes keeps busy.
   */
  readonly prefixReuse?: boolean;
  /**
   * Hand each evaluation to llama.cpp at once (a microtask) instead of on the next event-loop turn, which
   * node-llama-cpp waits for so concurrent sequences can share a batch. Right for prefill-only engines, whose
   * prompts run one at a time anyway; wrong for decoding, where it would stop sequences batching.
   */
  readonly immediateDispatch?: boolean;
  /**
   * A store for prefixes this engine evicts (with prefix reuse on): before a sequence's cached blocks are erased,
   * its state goes to the store; a prompt whose longest prefix is stored rather than held restores it instead of
   * evaluating it. Any engine of the same KV format can restore what another stored.
   */
  readonly prefixSpill?: PrefixSpill;
}

/** A prefix held elsewhere: the llama.cpp state of a sequence, and how many leading blocks it shares with a prompt. */
export interface SpilledPrefix {
  readonly blocks: number;
  readonly state: Uint8Array;
}

/** Prefix states by KV format and block hash chain; only an engine of the same format can load one. */
export interface PrefixSpill {
  /** Keeps the state of a sequence whose tokens have block hash chain `chain` (returns before the bytes are stored). */
  readonly store: (kvFormat: string, chain: ReadonlyArray<number>, state: Uint8Array) => Effect.Effect<void>;
  /** The stored state sharing the most leading blocks with `chain`, when that is more than `moreThan`. */
  readonly fetch: (kvFormat: string, chain: ReadonlyArray<number>, moreThan: number) => Effect.Effect<SpilledPrefix | undefined>;
}

/** The engine options the environment settings ask for (every process of a cluster reads the same ones). */
export const engineOptions = (
  modelPath: string,
  settings: Pick<Settings, "contextSize" | "sequences" | "threads" | "maxDecodeBatch" | "flashAttention">,
): LlamaCppOptions => ({
  modelPath,
  contextSize: settings.contextSize,
  sequences: settings.sequences,
  threads: settings.threads,
  maxDecodeBatch: settings.maxDecodeBatch,
  flashAttention: settings.flashAttention,
});

export const LLAMA_DEFAULTS = { contextSize: 512, sequences: 8, threads: 1, flashAttention: true, maxDecodeBatch: 3, prefixReuse: false } as const;

const VENDOR = "cpu";

/**
 * A driver fault for a failed llama.cpp call: the CPU classifier names it from the error text when it knows
 * the wording (e.g. a full KV cache is `context_overflow`, a resource fault); otherwise the call site's code.
 */
const fault = (code: string, faultClass: FaultClass) => (cause: unknown) => {
  const message = cause instanceof Error ? cause.message : String(cause);
  const classified = classifyCpu(message);
  return classified.code === UNKNOWN_CODE ? new DriverFault({ vendor: VENDOR, code, faultClass, message }) : classified;
};

export const makeLlamaCppEngine = (options: LlamaCppOptions): Effect.Effect<Engine, DriverFault, Scope.Scope> =>
  Effect.gen(function* () {
    const contextSize = options.contextSize ?? LLAMA_DEFAULTS.contextSize;
    const sequences = options.sequences ?? LLAMA_DEFAULTS.sequences;
    const threads = options.threads ?? LLAMA_DEFAULTS.threads;
    const flashAttention = options.flashAttention ?? LLAMA_DEFAULTS.flashAttention;
    const maxDecodeBatch = options.maxDecodeBatch ?? LLAMA_DEFAULTS.maxDecodeBatch;
    const prefixReuse = options.prefixReuse ?? LLAMA_DEFAULTS.prefixReuse;

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
        try: () =>
          model.createContext({
            contextSize,
            sequences,
            threads,
            flashAttention,
            batchSize: contextSize,
            ...(options.immediateDispatch ? { batching: { dispatchSchedule: (dispatch: () => void) => queueMicrotask(dispatch) } } : {}),
          }),
        catch: fault("allocation_failed", "resource"),
      }),
      (c) => Effect.promise(() => c.dispose()),
    );
    const stateDir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "tandem-kv-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
    );
    // Sequences are created once and recycled rather than disposed: node-llama-cpp reclaims a disposed
    // sequence id asynchronously, so a fresh getSequence() right after can fail. A free sequence keeps its KV
    // (and the block hashes of its tokens) so a later prompt with the same prefix can start from it.
    interface FreeSequence {
      readonly seq: LlamaContextSequence;
      readonly hashes: ReadonlyArray<number>;
      readonly releasedAt: number;
    }
    const free: FreeSequence[] = [];
    for (let i = 0; i < sequences; i++) free.push({ seq: context.getSequence(), hashes: [], releasedAt: 0 });
    const available = yield* Semaphore.make(sequences);
    let releases = 0;
    const counters = { promptTokens: 0, promptTokensEvaluated: 0, promptTokensReused: 0 };
    // Prompts are evaluated one at a time: llama.cpp splits a batch of several sequences into equal-length
    // ubatches, so a prompt batched with another can have its last tokens evaluated in a different shape,
    // and its greedy output would then depend on what it shared a batch with. Decode steps (one token per
    // sequence) still batch together.
    const promptLock = yield* Semaphore.make(1);
    const decodeSlots = yield* Semaphore.make(maxDecodeBatch);
    let stateFileCounter = 0;
    const eosToken = model.tokens.eos ?? 2;
    const kvFormat = formatName({ model: modelIdOf(options.modelPath), sequences, flashAttention });

    const clear = (seq: LlamaContextSequence) => Effect.promise(() => seq.clearHistory().catch(() => undefined));

    /**
     * A free sequence for the lifetime of the caller's scope: the one sharing the most prefix blocks with
     * `tokens`, else the least recently used. Its old KV is still there; the caller erases what it replaces.
     */
    const acquireSequence = (tokens: ReadonlyArray<number> = []) => {
      const wanted = prefixReuse ? blockHashes(tokens) : [];
      return Effect.acquireRelease(
        available.take(1).pipe(
          Effect.andThen(Effect.sync(() => {
            let best = 0;
            for (let i = 1; i < free.length; i++) {
              const a = sharedBlocks(wanted, free[i]!.hashes);
              const b = sharedBlocks(wanted, free[best]!.hashes);
              if (a > b || (a === b && free[i]!.releasedAt < free[best]!.releasedAt)) best = i;
            }
            return free.splice(best, 1)[0]!.seq;
          })),
        ),
        (seq) =>
          (prefixReuse ? Effect.void : clear(seq)).pipe(
            Effect.andThen(Effect.sync(() => {
              free.push({ seq, hashes: prefixReuse ? blockHashes(seq.contextTokens) : [], releasedAt: ++releases });
            })),
            Effect.andThen(available.release(1)),
          ),
      );
    };

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

    /** The sequence's llama.cpp state, through a private temp file. */
    const saveState = (seq: LlamaContextSequence) =>
      Effect.gen(function* () {
        const file = join(stateDir, `export-${stateFileCounter++}.bin`);
        yield* Effect.tryPromise({ try: () => seq.saveStateToFile(file), catch: fault("state_save_failed", "transient") });
        return yield* Effect.tryPromise({
          try: () => readFile(file).then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)),
          catch: fault("state_save_failed", "transient"),
        }).pipe(Effect.ensuring(Effect.promise(() => unlink(file).catch(() => undefined))));
      });

    /** Loads a state into `seq`; a rejected load leaves it empty rather than half-written. */
    const loadState = (seq: LlamaContextSequence, bytes: Uint8Array) => {
      const file = join(stateDir, `import-${stateFileCounter++}.bin`);
      return Effect.tryPromise({
        try: async () => {
          await writeFile(file, bytes);
          await seq.loadStateFromFile(file, { acceptRisk: true });
        },
        catch: fault("state_load_rejected", "fatal"),
      }).pipe(
        Effect.tapError(() => clear(seq)),
        Effect.ensuring(Effect.promise(() => unlink(file).catch(() => undefined))),
      );
    };

    /**
     * With a spill store: the blocks of `seq` this prompt would erase go to the store first, and a stored prefix
     * longer than what `seq` holds is loaded into it. Either failing only costs the reuse: the prompt is then
     * evaluated from what `seq` holds (keepPrefix compares tokens, so a restored state is used only as far as
     * its tokens equal the prompt's).
     */
    const spillAndRestore = (spill: PrefixSpill, seq: LlamaContextSequence, tokens: ReadonlyArray<number>) =>
      Effect.gen(function* () {
        const wanted = blockHashes(tokens);
        const held = blockHashes(seq.contextTokens);
        const kept = sharedBlocks(wanted, held);
        const stored = yield* spill.fetch(kvFormat, wanted, kept);
        if (stored === undefined ? held.length > kept : held.length > 0) yield* spill.store(kvFormat, held, yield* saveState(seq));
        if (stored !== undefined) yield* loadState(seq, stored.state);
      }).pipe(Effect.ignore);

    const liveSequence = (seq: LlamaContextSequence): LiveSequence => ({
      get length() {
        return seq.nextTokenIndex;
      },
      exportKv: saveState(seq),
      decode: (token, maxNewTokens, onToken) =>
        decodeSlots.withPermits(1)(
          generateFrom(seq, [token], maxNewTokens, (t) => onToken(t, detokenize([t], seq.contextTokens.slice(0, -1)))),
        ),
    });

    /** Keeps the longest prefix of `seq` that equals `tokens` (at most all but the last token) and erases the rest. */
    const keepPrefix = (seq: LlamaContextSequence, tokens: ReadonlyArray<number>) =>
      Effect.tryPromise({
        try: async () => {
          const held = seq.contextTokens;
          let keep = 0;
          if (prefixReuse) {
            // The last prompt token is always evaluated again: its logits give the first generated token.
            while (keep < held.length && keep < tokens.length - 1 && held[keep] === tokens[keep]) keep++;
          }
          if (keep < seq.nextTokenIndex) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
          return keep;
        },
        catch: fault("kv_erase_failed", "transient"),
      });

    const prefill = (tokens: ReadonlyArray<number>) =>
      Effect.gen(function* () {
        const seq = yield* acquireSequence(tokens);
        let firstToken = eosToken;
        yield* promptLock.withPermits(1)(
          Effect.gen(function* () {
            if (prefixReuse && options.prefixSpill !== undefined) yield* spillAndRestore(options.prefixSpill, seq, tokens);
            const reused = yield* keepPrefix(seq, tokens);
            counters.promptTokens += tokens.length;
            counters.promptTokensReused += reused;
            counters.promptTokensEvaluated += tokens.length - reused;
            yield* generateFrom(seq, tokens.slice(reused), 1, (t) => Effect.sync(() => void (firstToken = t)));
          }),
        );
        return { sequence: liveSequence(seq), firstToken };
      });

    const engine: Engine = {
      info: {
        vendor: VENDOR,
        device: "llama.cpp-cpu",
        model: modelIdOf(options.modelPath),
        emulated: false,
        kvFormat,
        contextSize,
        sequences,
        eosToken,
      },
      tokenize: (text) => Effect.sync(() => [...(model.tokens.bos === null ? [] : [model.tokens.bos]), ...model.tokenize(text, false)]),
      detokenize,
      prefill,
      counters: Effect.sync(() => ({ ...counters })),
      importKv: (bytes) =>
        Effect.gen(function* () {
          const seq = yield* acquireSequence();
          yield* loadState(seq, bytes);
          return liveSequence(seq);
        }),
      generate: generateInOneSequence(prefill, eosToken),
    };
    return engine;
  });
