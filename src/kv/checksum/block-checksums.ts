// What a KV chunk's checksum is made of: blocks. A chunk's checksum is the checksum of its blocks' checksums
// (little-endian u32s, in order), each block KV_CHECKSUM_BLOCK bytes from the chunk's start, the last one
// shorter. Defining it by blocks lets the producer of a layer hash each block while the block is still in cache
// from writing it (`copyWithBlockChecksums`), and hand the sums to the sender (`KvPayload.blockChecksums`): a
// chunk that starts on a block boundary of its layer then costs the sender no pass over its bytes, only a hash
// of its blocks' sums. On this 2-core machine the sender's own pass over a 64 MiB cache, which reads it from
// memory a second time, cost a third of the direct TCP channel's time (docs/kv.md).
import { kvChecksum } from "./kv-hash.ts";

/** Bytes per checksum block. Chunk sizes that are multiples of it can reuse a producer's block checksums. */
export const KV_CHECKSUM_BLOCK = 0x10000;

/** Blocks in `bytes` bytes (an empty chunk is one empty block, as an empty layer is one empty chunk). */
export const checksumBlocks = (bytes: number): number => Math.max(1, Math.ceil(bytes / KV_CHECKSUM_BLOCK));

/** The checksum of each block of `bytes`. */
export const blockChecksums = (bytes: Uint8Array): Uint32Array => {
  const sums = new Uint32Array(checksumBlocks(bytes.length));
  for (let b = 0; b < sums.length; b++) sums[b] = kvChecksum(bytes.subarray(b * KV_CHECKSUM_BLOCK, (b + 1) * KV_CHECKSUM_BLOCK));
  return sums;
};

/** A chunk's checksum from its blocks' checksums. */
export const combineBlockChecksums = (sums: Uint32Array): number => kvChecksum(new Uint8Array(sums.buffer, sums.byteOffset, sums.byteLength));

/** The checksum of one chunk's bytes. */
export const chunkChecksum = (bytes: Uint8Array): number => combineBlockChecksums(blockChecksums(bytes));

/**
 * Copies `sources` end to end into `dst` (exactly their total length) and returns the checksums of `dst`'s blocks,
 * each hashed right after it is written, while it is still in cache.
 */
export const copyWithBlockChecksums = (sources: ReadonlyArray<Uint8Array>, dst: Uint8Array): Uint32Array => {
  const total = sources.reduce((sum, s) => sum + s.length, 0);
  if (total !== dst.length) throw new RangeError(`copyWithBlockChecksums: sources hold ${total} bytes, the destination ${dst.length}`);
  const sums = new Uint32Array(checksumBlocks(total));
  let source = 0;
  let read = 0;
  for (let b = 0; b < sums.length; b++) {
    const block = dst.subarray(b * KV_CHECKSUM_BLOCK, (b + 1) * KV_CHECKSUM_BLOCK);
    for (let filled = 0; filled < block.length;) {
      const from = sources[source]!;
      const take = Math.min(block.length - filled, from.length - read);
      block.set(from.subarray(read, read + take), filled);
      filled += take;
      read += take;
      if (read === from.length) {
        source++;
        read = 0;
      }
    }
    sums[b] = kvChecksum(block);
  }
  return sums;
};
