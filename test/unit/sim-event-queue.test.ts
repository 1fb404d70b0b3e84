// The simulator's event list and decode batch: events come out in time order, ties in push order; the O(1)
// batch bookkeeping matches a per-sequence brute force.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DecodeBatch } from "../../src/sim/decode-batch.ts";
import { EventQueue } from "../../src/sim/event-queue.ts";

describe("EventQueue", () => {
  it("pops in time order and, at equal times, in push order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 300 }), (times) => {
        const q = new EventQueue<number>();
        times.forEach((t, i) => q.push(t, i));
        const out: number[] = [];
        while (q.size > 0) out.push(q.pop()!);
        const expected = times.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i);
        expect(out).toEqual(expected);
      }),
    );
  });

  it("interleaves pushes and pops correctly and reports the next time", () => {
    const q = new EventQueue<string>();
    expect(q.peekTime()).toBe(Number.POSITIVE_INFINITY);
    expect(q.pop()).toBeUndefined();
    q.push(5, "a");
    q.push(1, "b");
    expect(q.peekTime()).toBe(1);
    expect(q.pop()).toBe("b");
    q.push(3, "c");
    q.push(5, "d");
    expect([q.pop(), q.pop(), q.pop()]).toEqual(["c", "a", "d"]);
    expect(() => q.push(Number.NaN, "x")).toThrow(RangeError);
  });
});

describe("DecodeBatch", () => {
  it("keeps the summed context and finishes sequences exactly as stepping each one would", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 30 }), context: fc.integer({ min: 1, max: 500 }), steps: fc.integer({ min: 1, max: 40 }) }), { minLength: 1, maxLength: 40 }),
        (joins) => {
          const batch = new DecodeBatch<{ id: number; reservedTokens: number; joinStep: number; joinContext: number }>();
          const live = new Map<number, { context: number; left: number }>();
          const finishedAt = new Map<number, number>();
          const expectedAt = new Map<number, number>();
          for (let step = 0; step <= 80; step++) {
            joins.forEach((j, id) => {
              if (j.at !== step) return;
              batch.join({ id, reservedTokens: 0, joinStep: 0, joinContext: 0 }, j.context, j.context + j.steps, j.steps);
              live.set(id, { context: j.context, left: j.steps });
            });
            expect(batch.sumContext).toBe([...live.values()].reduce((s, x) => s + x.context, 0));
            expect(batch.running).toBe(live.size);
            batch.step();
            for (let seq = batch.nextFinished(); seq !== undefined; seq = batch.nextFinished()) finishedAt.set(seq.id, step + 1);
            for (const [id, x] of live) {
              x.context++;
              if (--x.left === 0) {
                live.delete(id);
                expectedAt.set(id, step + 1);
              }
            }
          }
          expect(finishedAt).toEqual(expectedAt);
          expect(batch.reservedTokens).toBe(0);
        },
      ),
    );
  });
});
