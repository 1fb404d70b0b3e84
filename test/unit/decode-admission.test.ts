// The decode worker's admission: the simulator's admitFromQueue over a live queue — first come, first served,
// reservations held until the decode's scope closes, a waiter interrupted in the queue leaving it, and a decode
// that could never fit refused with a typed error instead of waiting forever.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Deferred, Effect, Exit, Fiber, Scope } from "effect";
import { describe, expect, it } from "vitest";
import { makeDecodeAdmission } from "../../actors/decode/decode-admission.ts";
import { TandemError } from "../../src/protocol/index.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Admits `tokens` in a scope of its own; returns the fiber waiting for admission and `end`, which finishes the
 * decode, waits for it and lets the decodes it admitted run.
 */
const decodeOf = (admission: ReturnType<typeof makeDecodeAdmission>, tokens: number, order: number[], id: number) =>
  Effect.gen(function* () {
    const finish = yield* Deferred.make<void>();
    const fiber = yield* Effect.forkChild(
      Effect.scoped(admission.admit(tokens).pipe(Effect.andThen(Effect.sync(() => order.push(id))), Effect.andThen(Deferred.await(finish)))),
    );
    const end = Deferred.succeed(finish, undefined).pipe(Effect.andThen(Fiber.join(fiber)), Effect.andThen(Effect.yieldNow));
    return { fiber, end };
  });

describe("decode admission", () => {
  it("admits in arrival order within the sequence and token limits, and the next one when a decode ends", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const admission = makeDecodeAdmission({ maxSequences: 2, maxTokens: 100 });
        const order: number[] = [];
        const a = yield* decodeOf(admission, 40, order, 1);
        const b = yield* decodeOf(admission, 50, order, 2);
        // Would fit by tokens only after one leaves; the small one behind it must not overtake it.
        const c = yield* decodeOf(admission, 30, order, 3);
        const d = yield* decodeOf(admission, 5, order, 4);
        yield* Effect.yieldNow;
        const first = { order: [...order], usage: admission.usage() };
        yield* a.end;
        const second = { order: [...order], usage: admission.usage() };
        yield* b.end;
        const third = { order: [...order], usage: admission.usage() };
        yield* c.end;
        yield* d.end;
        return { first, second, third, end: admission.usage() };
      }),
    );
    expect(result.first).toEqual({ order: [1, 2], usage: { sequences: 2, tokens: 90, waiting: 2 } });
    // 1 left: 3 (30 tokens) joins next to 2 (50); 4 waits for a sequence.
    expect(result.second).toEqual({ order: [1, 2, 3], usage: { sequences: 2, tokens: 80, waiting: 1 } });
    expect(result.third).toEqual({ order: [1, 2, 3, 4], usage: { sequences: 2, tokens: 35, waiting: 0 } });
    expect(result.end).toEqual({ sequences: 0, tokens: 0, waiting: 0 });
  });

  it("head of line: a decode that does not fit yet holds back smaller ones behind it", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const admission = makeDecodeAdmission({ maxSequences: 4, maxTokens: 100 });
        const order: number[] = [];
        const a = yield* decodeOf(admission, 70, order, 1);
        const b = yield* decodeOf(admission, 60, order, 2);
        yield* decodeOf(admission, 10, order, 3);
        yield* Effect.yieldNow;
        const blocked = { order: [...order], usage: admission.usage() };
        yield* a.end;
        yield* b.end;
        return { blocked, after: [...order] };
      }),
    );
    expect(result.blocked).toEqual({ order: [1], usage: { sequences: 1, tokens: 70, waiting: 2 } });
    expect(result.after).toEqual([1, 2, 3]);
  });

  it("a decode interrupted while it waits leaves the queue and holds nothing", async () => {
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const admission = makeDecodeAdmission({ maxSequences: 1, maxTokens: 100 });
        const order: number[] = [];
        const a = yield* decodeOf(admission, 10, order, 1);
        const b = yield* decodeOf(admission, 10, order, 2);
        const c = yield* decodeOf(admission, 10, order, 3);
        yield* Effect.yieldNow;
        yield* Fiber.interrupt(b.fiber);
        const afterCancel = admission.usage();
        yield* a.end;
        yield* c.end;
        return { afterCancel, order, end: admission.usage() };
      }),
    );
    expect(result.afterCancel).toEqual({ sequences: 1, tokens: 10, waiting: 1 });
    expect(result.order).toEqual([1, 3]);
    expect(result.end).toEqual({ sequences: 0, tokens: 0, waiting: 0 });
  });

  it("refuses a decode larger than the whole batch with a typed error, and keeps serving", async () => {
    const admission = makeDecodeAdmission({ maxSequences: 2, maxTokens: 100 });
    const exit = await Effect.runPromise(Effect.exit(Effect.scoped(admission.admit(101))));
    expect(Exit.isFailure(exit)).toBe(true);
    const error = Exit.isFailure(exit) ? exit.cause.reasons.map((r) => (r._tag === "Fail" ? r.error : undefined))[0] : undefined;
    expect(error).toBeInstanceOf(TandemError);
    expect((error as TandemError).code).toBe("InvalidRequest");
    expect((error as TandemError).reason).toBe("context_too_long");
    const scope = await Effect.runPromise(Scope.make());
    await Effect.runPromise(admission.admit(100).pipe(Scope.provide(scope)));
    expect(admission.usage()).toEqual({ sequences: 1, tokens: 100, waiting: 0 });
    await Effect.runPromise(Scope.close(scope, Exit.void));
    expect(admission.usage()).toEqual({ sequences: 0, tokens: 0, waiting: 0 });
  });

  it("is the simulator's policy: the live decode worker and the simulator import admitFromQueue from one file", () => {
    const importsOf = (file: string) =>
      [...readFileSync(resolve(root, file), "utf8").matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)]
        .filter((m) => m[1]!.split(",").some((s) => s.trim() === "admitFromQueue"))
        .map((m) => resolve(dirname(resolve(root, file)), m[2]!));
    const policy = resolve(root, "src/policy/batch-admission.ts");
    expect(importsOf("actors/decode/decode-admission.ts")).toEqual([policy]);
    expect(importsOf("src/sim/simulator.ts")).toEqual([policy]);
    expect(readFileSync(resolve(root, "actors/decode/decode-worker.ts"), "utf8")).toContain("admission.admit(");
  });
});
