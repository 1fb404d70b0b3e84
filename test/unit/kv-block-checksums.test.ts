// Chunk checksums by blocks: a chunk's checksum is the checksum of its blocks' checksums; the producer's fused
// copy makes the same block checksums as hashing the copy afterwards; and a sender given the producer's block
// checksums seals every chunk exactly as one hashing the chunk itself, whether or not the chunk size is a
// multiple of the block (when it is not, the sender falls back to hashing).
import { randomFillSync } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  blockChecksums,
  checksumBlocks,
  chunkChecksum,
  combineBlockChecksums,
  copyWithBlockChecksums,
  KV_CHECKSUM_BLOCK,
} from "../../src/kv/checksum/block-checksums.ts";
import { kvChecksum } from "../../src/kv/checksum/kv-hash.ts";
import { kvLayout, layerChunk } from "../../src/kv/chunking.ts";
import { sealChunk } from "../../src/transport/kv-transfer.ts";

const B = KV_CHECKSUM_BLOCK;
const random = (n: number) => randomFillSync(new Uint8Array(n));

describe("chunk checksums by blocks", () => {
  it("is the checksum of the blocks' checksums, blocks counted from the chunk's start", () => {
    const bytes = random(2 * B + 5);
    const sums = Uint32Array.of(kvChecksum(bytes.subarray(0, B)), kvChecksum(bytes.subarray(B, 2 * B)), kvChecksum(bytes.subarray(2 * B)));
    expect(chunkChecksum(bytes)).toBe(kvChecksum(new Uint8Array(sums.buffer)));
    expect(chunkChecksum(bytes)).toBe(combineBlockChecksums(blockChecksums(bytes)));
    // An empty chunk is one empty block.
    expect(checksumBlocks(0)).toBe(1);
    expect(chunkChecksum(new Uint8Array(0))).toBe(kvChecksum(new Uint8Array(Uint32Array.of(kvChecksum(new Uint8Array(0))).buffer)));
  });

  it("changes when any byte of any block changes, or when blocks swap", () => {
    const bytes = random(3 * B);
    const before = chunkChecksum(bytes);
    for (const at of [0, B - 1, B, 2 * B + 77, 3 * B - 1]) {
      const copy = bytes.slice();
      copy[at]! ^= 1;
      expect(chunkChecksum(copy), `byte ${at}`).not.toBe(before);
    }
    const swapped = bytes.slice();
    swapped.set(bytes.subarray(0, B), B);
    swapped.set(bytes.subarray(B, 2 * B), 0);
    expect(chunkChecksum(swapped)).not.toBe(before);
  });

  it("the producer's fused copy writes the sources end to end and makes the block checksums of what it wrote", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 * B }), { minLength: 1, maxLength: 4 }), fc.integer(), (sizes, seed) => {
        const sources = sizes.map((n, i) => Uint8Array.from({ length: n }, (_, j) => (seed + 31 * i + j * 7) & 255));
        const total = sizes.reduce((a, b) => a + b, 0);
        const dst = new Uint8Array(total);
        const sums = copyWithBlockChecksums(sources, dst);
        const expected = new Uint8Array(total);
        let at = 0;
        for (const s of sources) {
          expected.set(s, at);
          at += s.length;
        }
        expect(Buffer.compare(dst, expected)).toBe(0);
        expect([...sums]).toEqual([...blockChecksums(expected)]);
      }),
      { numRuns: 40 },
    );
    expect(() => copyWithBlockChecksums([new Uint8Array(3)], new Uint8Array(4))).toThrow(RangeError);
  });

  it("a sender with the producer's block checksums seals every chunk as one that hashes the chunk", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5 * B }), { minLength: 1, maxLength: 3 }),
        fc.constantFrom(B, 2 * B, 4 * B, 3 * B + 4096, 100_000, 4096),
        (layerSizes, chunkBytes) => {
          const layers = layerSizes.map(random);
          const layout = kvLayout(layerSizes, chunkBytes);
          const fromProducer = new Uint32Array(layout.chunks);
          const bySender = new Uint32Array(layout.chunks);
          layers.forEach((bytes, layer) => {
            const sums = blockChecksums(bytes);
            for (let index = layout.firstChunks[layer]!; index < layout.firstChunks[layer + 1]!; index++) {
              const chunk = layerChunk(layout, bytes, index);
              expect(sealChunk(layout, fromProducer, index, chunk, sums)).toBe(sealChunk(layout, bySender, index, chunk));
              expect(fromProducer[index]).toBe(chunkChecksum(chunk));
            }
          });
          expect([...fromProducer]).toEqual([...bySender]);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("ignores block checksums that do not fit the layer, hashing the chunk instead", () => {
    const bytes = random(2 * B);
    const layout = kvLayout([bytes.length], B);
    const checksums = new Uint32Array(layout.chunks);
    sealChunk(layout, checksums, 0, layerChunk(layout, bytes, 0), new Uint32Array(1));
    expect(checksums[0]).toBe(chunkChecksum(bytes.subarray(0, B)));
  });
});
