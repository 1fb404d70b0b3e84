import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PrefixIndex } from "../../src/kv/prefix-index.ts";
import { PROMPT_BLOCK_CHARS, promptBlockHashes } from "../../src/kv/prompt-prefix.ts";

const PREFIX = "x".repeat(PROMPT_BLOCK_CHARS * 3);
/** Chain with `shared` blocks in common with every other chain made with the same `shared`. */
const chain = (tag: string, shared = 0) => promptBlockHashes(PREFIX.slice(0, shared * PROMPT_BLOCK_CHARS) + tag.repeat(PROMPT_BLOCK_CHARS * 2));
const serve = (index: PrefixIndex, worker: string, request: string, c: ReadonlyArray<number>, capacity = 2) => {
  index.started(worker, 1, capacity, request, c);
  index.finished(worker, request);
};

describe("prompt prefix hashes", () => {
  it("are a chain over 64-character blocks: equal text prefixes give equal leading hashes", () => {
    const a = promptBlockHashes(`${PREFIX}tail one`);
    const b = promptBlockHashes(`${PREFIX}another tail`);
    expect(a.slice(0, 3)).toEqual(b.slice(0, 3));
    expect(promptBlockHashes("short")).toEqual([]);
    expect(promptBlockHashes(`y${PREFIX}`)[0]).not.toBe(a[0]);
  });
});

describe("prefix index", () => {
  it("reports the leading blocks each worker holds", () => {
    const index = new PrefixIndex();
    serve(index, "p0", "r1", chain("a", 3));
    serve(index, "p1", "r2", chain("b", 1));
    expect(index.cachedBlocks(chain("c", 3))).toEqual(new Map([["p0", 3], ["p1", 1]]));
    expect(index.cachedBlocks(chain("a", 3))).toEqual(new Map([["p0", 5], ["p1", 1]]));
    expect(index.cachedBlocks(chain("z"))).toEqual(new Map());
  });

  it("evicts the least recently used prefix when a worker's sequences are all taken", () => {
    const index = new PrefixIndex();
    serve(index, "p0", "r1", chain("a"));
    serve(index, "p0", "r2", chain("b"));
    serve(index, "p0", "r3", chain("c"));
    expect(index.cachedBlocks(chain("a")).get("p0")).toBeUndefined();
    expect(index.cachedBlocks(chain("b")).get("p0")).toBe(2);
    expect(index.cachedBlocks(chain("c")).get("p0")).toBe(2);
  });

  it("overwrites the slot sharing the prompt's prefix instead of evicting another, as the engine does", () => {
    const index = new PrefixIndex();
    serve(index, "p0", "r1", chain("a", 2));
    serve(index, "p0", "r2", chain("b"));
    serve(index, "p0", "r3", chain("c", 2));
    expect(index.cachedBlocks(chain("b")).get("p0")).toBe(2);
    expect(index.cachedBlocks(chain("c", 2)).get("p0")).toBe(4);
    expect(index.cachedBlocks(chain("a", 2)).get("p0")).toBe(2);
  });

  it("never evicts a prefix in use by an in-flight request", () => {
    const index = new PrefixIndex();
    index.started("p0", 1, 2, "r1", chain("a"));
    serve(index, "p0", "r2", chain("b"));
    serve(index, "p0", "r3", chain("c"));
    serve(index, "p0", "r4", chain("d"));
    expect(index.cachedBlocks(chain("a")).get("p0")).toBe(2);
    expect(index.cachedBlocks(chain("d")).get("p0")).toBe(2);
    expect(index.cachedBlocks(chain("c")).get("p0")).toBeUndefined();
  });

  it("recovers from a lost 'finished' and forgets a restarted worker", () => {
    const index = new PrefixIndex();
    index.started("p0", 1, 1, "r1", chain("a"));
    index.started("p0", 1, 1, "r2", chain("b"));
    expect(index.cachedBlocks(chain("b")).get("p0")).toBe(2);
    index.started("p0", 2, 1, "r3", chain("c"));
    expect(index.cachedBlocks(chain("b")).get("p0")).toBeUndefined();
  });

  it("holds at most capacity prefixes per worker and keeps every pinned one (random schedules)", () => {
    const op = fc.record({ start: fc.boolean(), tag: fc.constantFrom("a", "b", "c", "d", "e"), shared: fc.nat(3), pick: fc.nat(100) });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
        const index = new PrefixIndex();
        const inFlight: { request: string; chain: ReadonlyArray<number> }[] = [];
        ops.forEach((o, n) => {
          if (o.start && inFlight.length < capacity) {
            const c = chain(o.tag, o.shared);
            index.started("p0", 1, capacity, `r${n}`, c);
            inFlight.push({ request: `r${n}`, chain: c });
          } else if (inFlight.length > 0) {
            const [done] = inFlight.splice(o.pick % inFlight.length, 1);
            index.finished("p0", done!.request);
          }
          for (const pinned of inFlight) expect(index.cachedBlocks(pinned.chain).get("p0")).toBe(pinned.chain.length);
        });
        const distinct = new Set(ops.map((o) => `${o.tag}${o.shared}`));
        const held = [...distinct].filter((k) => index.cachedBlocks(chain(k[0]!, Number(k[1]))).get("p0") === chain(k[0]!, Number(k[1])).length);
        expect(held.length).toBeLessThanOrEqual(capacity);
      }),
      { numRuns: 300 },
    );
  });
});
