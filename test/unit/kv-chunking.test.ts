import { describe, expect, it } from "vitest";
import { chunkAt, chunkCount, chunkSizeFor } from "../../src/kv/chunking.ts";

describe("KV chunking", () => {
  it("chunks reassemble to the original bytes and each fits under max_payload", () => {
    const bytes = new Uint8Array(10_000).map((_, i) => (i * 31) & 0xff);
    const size = chunkSizeFor(5_000, 3_000);
    expect(size).toBeLessThanOrEqual(1_000);
    const n = chunkCount(bytes.length, size);
    const out = new Uint8Array(bytes.length);
    for (let i = 0; i < n; i++) out.set(chunkAt(bytes, size, i), i * size);
    expect(out).toEqual(bytes);
    expect(chunkAt(bytes, size, n - 1).length).toBe(bytes.length - (n - 1) * size);
  });
});
