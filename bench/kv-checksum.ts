// `npm run bench:kv` (checksum part): the KV chunk checksum (src/kv/checksum/) over 64 MiB in 1 MiB chunks, as a
// transfer computes it — in place (bytes in its memory: pooled receive buffers, the prefill worker's layers) and
// staged (bytes anywhere else) — next to zlib's CRC-32 (what the channels used before) and a plain copy of the
// same bytes (TypedArray.set), all in this run; and once on bytes in cache (one 64 KiB block hashed over and over
// against copying it), which is how a receiver verifies each block right after it lands and how the producer hashes
// each block right after writing it. Each side alternates and keeps its best of 15, as in kv-kernels.ts. One JSON
// line per variant.
import { randomFillSync } from "node:crypto";
import { loadavg } from "node:os";
import * as zlib from "node:zlib";
import { hashableBuffer, kvChecksum } from "../src/kv/checksum/kv-hash.ts";

const MIB = 1024 * 1024;
const BYTES = 64 * MIB;
const CHUNK = MIB;
const REPS = 15;
const round = (x: number) => Math.round(x * 1000) / 1000;

const inPlace = hashableBuffer(BYTES);
for (let o = 0; o < BYTES; o += 65536) randomFillSync(inPlace.subarray(o, o + 65536));
const plain = inPlace.slice();
const copyTarget = new Uint8Array(BYTES);
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

const perChunk = (bytes: Uint8Array, f: (chunk: Uint8Array) => number) => () => {
  let sink = 0;
  for (let at = 0; at < BYTES; at += CHUNK) sink ^= f(bytes.subarray(at, at + CHUNK));
  return sink;
};
const best = (run: () => unknown, copy: () => unknown) => {
  let runMs = Number.POSITIVE_INFINITY;
  let copyMs = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep < REPS; rep++) {
    let t = performance.now();
    copy();
    copyMs = Math.min(copyMs, performance.now() - t);
    t = performance.now();
    run();
    runMs = Math.min(runMs, performance.now() - t);
  }
  return { runMs, copyMs };
};
const copy = () => copyTarget.set(plain);
/** The same total bytes as one 64 KiB block (in cache) over and over: hashed in place, and copied. */
const BLOCK = 64 * 1024;
const blockInCache = inPlace.subarray(0, BLOCK);
const hashBlockRepeatedly = () => {
  let sink = 0;
  for (let at = 0; at < BYTES; at += BLOCK) sink ^= kvChecksum(blockInCache);
  return sink;
};
const copyBlockRepeatedly = () => {
  for (let at = 0; at < BYTES; at += BLOCK) copyTarget.set(plain.subarray(0, BLOCK), at & (4 * MIB - 1));
};

const variants: Array<[string, () => unknown, () => unknown, number]> = [
  ["kv checksum, in place", perChunk(inPlace, kvChecksum), copy, CHUNK],
  ["kv checksum, staged", perChunk(plain, kvChecksum), copy, CHUNK],
  ["kv checksum, in place, one 64 KiB block in cache", hashBlockRepeatedly, copyBlockRepeatedly, BLOCK],
];
if (zlibCrc32 !== undefined) variants.push(["zlib crc32 (before 2026-11-27)", perChunk(plain, (c) => zlibCrc32(c)), copy, CHUNK]);
for (const [what, run, baseline, chunkBytes] of variants) {
  const { runMs, copyMs } = best(run, baseline);
  // console.log rather than process.stdout so the bench also runs under Deno.
  console.log(JSON.stringify({
    bench: "kv-checksum",
    what,
    bytes: BYTES,
    chunkBytes,
    gbPerSec: round(BYTES / runMs / 1e6),
    copyGbPerSec: round(BYTES / copyMs / 1e6),
    ratioToCopy: round(copyMs / runMs),
    loadAverage: round(loadavg()[0]!),
  }));
}
