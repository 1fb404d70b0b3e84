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

  it("sizes chunks in whole 64 KiB checksum blocks under max_payload, and smaller ones as asked", () => {
    expect(chunkSizeFor(1024 * 1024)).toBe(960 * 1024); // nats-server's default max_payload, less the envelope
    expect(chunkSizeFor(8 * 1024 * 1024)).toBe(1024 * 1024);
    expect(chunkSizeFor(8 * 1024 * 1024, 100_000)).toBe(64 * 1024);
    expect(chunkSizeFor(8 * 1024 * 1024, 1024)).toBe(1024);
  });
});
