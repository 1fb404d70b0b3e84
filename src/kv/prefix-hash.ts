// Prefix identity for KV reuse: a hash chain over 16-token blocks, so equal chains mean equal prefixes
// (each block's hash covers every token before it) and the longest shared prefix is a count of equal hashes.

export const PREFIX_BLOCK_TOKENS = 16;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Hash of every full block of `tokens`, each chained on the one before (FNV-1a over 32-bit token ids). */
export const blockHashes = (tokens: ReadonlyArray<number>, blockTokens = PREFIX_BLOCK_TOKENS): number[] => {
  const hashes: number[] = [];
  let hash = FNV_OFFSET;
  for (let block = 0; (block + 1) * blockTokens <= tokens.length; block++) {
    for (let i = block * blockTokens; i < (block + 1) * blockTokens; i++) {
      const token = tokens[i]!;
      for (let shift = 0; shift < 32; shift += 8) {
        hash ^= (token >>> shift) & 0xff;
        hash = Math.imul(hash, FNV_PRIME) >>> 0;
      }
    }
    hashes.push(hash);
  }
  return hashes;
};

/** How many leading blocks two chains share. */
export const sharedBlocks = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
};
