// Emulated vendor pools in a real cluster: a B200 prefill pool (NVIDIA: vLLM FlashAttention KV) and a Gaudi 3
// decode pool (Intel: vLLM-Gaudi KV), as `tandem up --prefill nvidia-b200 --decode intel-gaudi3-hl325l`
// starts them. Every answer equals the monolithic llama.cpp run; the KV that crosses NATS is the NVIDIA
// native layout (the offer names it, the bytes are its envelope), translated to Gaudi's layout on arrival;
// membership, `tandem status` and `$SRV.INFO` show the workers as emulated chips.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Result } from "effect";
import { decode as msgpackDecode } from "@msgpack/msgpack";
import type { Msg, Subscription } from "nats";
import { generate } from "../../src/client/client.ts";
import { clusterStatus } from "../../src/cli/status.ts";
import { decodeEnvelope } from "../../src/engine/emulated/kv-envelope.ts";
import { decodeKvChunkFrame, headerLookupOf, isKvChunkFrame } from "../../src/protocol/kv-chunk-frame.ts";
import { referenceTokens, startTestCluster, type TestCluster } from "../support/cluster.ts";

const PROMPTS = ["Once upon a time", "The little dog", "Lily wanted to play with her friend Tom in the park, but", "One day, a big bear"];
const MAX_TOKENS = 40;
const NVIDIA_FORMAT = "vllm-flash-attention/f16/stories260K/kv_heads=4";
const GAUDI_FORMAT = "vllm-gaudi/f16/stories260K/kv_heads=4";

let t: TestCluster;
let kvTap: Subscription;
/** What crossed `kv.>`: each transfer's offered format and its chunks by index. */
const transfers = new Map<string, { format?: string; chunks: Map<number, Uint8Array> }>();
const transferOf = (id: string) => {
  let entry = transfers.get(id);
  if (entry === undefined) transfers.set(id, (entry = { chunks: new Map() }));
  return entry;
};

beforeAll(async () => {
  t = await startTestCluster({
    prefill: 1,
    decode: 1,
    emulate: { prefill: "nvidia-b200", decode: "intel-gaudi3-hl325l", model: "llama-3-8b" },
    // KV over NATS (so this test sees every byte), emulated delays at a tenth of the predicted time.
    env: { TANDEM_KV_TCP: "0", TANDEM_EMULATE_TIME_SCALE: "0.1" },
  });
  kvTap = t.nc.subscribe(`tandem.v1.${t.cluster.cluster}.kv.>`, {
    callback: (_err, msg: Msg) => {
      const header = headerLookupOf(msg);
      if (isKvChunkFrame(header)) {
        const chunk = decodeKvChunkFrame(header, msg.data);
        if (Result.isSuccess(chunk)) transferOf(chunk.success.transferId).chunks.set(chunk.success.index, chunk.success.bytes.slice());
        return;
      }
      const body = msgpackDecode(msg.data) as { _tag?: string; transferId?: string; format?: string };
      if (body._tag === "KvOffer") transferOf(body.transferId!).format = body.format;
    },
  });
});

afterAll(async () => {
  kvTap?.unsubscribe();
  await t?.stop();
});

describe("emulated pools: B200 prefill → Gaudi 3 decode", () => {
  it("answers every prompt with exactly the monolithic tokens", async () => {
    const reference = await referenceTokens(PROMPTS, MAX_TOKENS);
    for (const prompt of PROMPTS) {
      const outcome = await generate(t.nc, t.subjects, { prompt, maxTokens: MAX_TOKENS });
      expect(outcome.final._tag, JSON.stringify(outcome.final)).toBe("GenerateDone");
      expect(outcome.tokens, prompt).toEqual(reference.get(prompt));
      expect(outcome.tokens.length).toBeGreaterThanOrEqual(32);
    }
  });

  it("puts the NVIDIA native layout on the wire: the offer names it and the bytes are its envelope", async () => {
    await t.nc.flush();
    expect(transfers.size).toBe(PROMPTS.length);
    for (const [id, transfer] of transfers) {
      expect(transfer.format, id).toBe(NVIDIA_FORMAT);
      const chunks = [...transfer.chunks.entries()].sort(([a], [b]) => a - b).map(([, bytes]) => bytes);
      const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      chunks.reduce((at, c) => (bytes.set(c, at), at + c.length), 0);
      const { descriptor, llama } = decodeEnvelope(bytes);
      expect(descriptor).toMatchObject({ format: "vllm-flash-attention", dtype: "f16", pageSize: 16, layers: 5, kvHeads: 4, headDim: 8 });
      expect(descriptor.layout).toMatchObject({ tokenOrder: "NHD", kvPacking: "planes" });
      expect(llama.positions.length).toBe(descriptor.tokens);
    }
  });

  it("shows the workers as emulated chips in membership, tandem status and $SRV.INFO", async () => {
    const status = await clusterStatus(t.nc, t.cluster.cluster);
    expect(status.pools.prefill).toHaveLength(1);
    expect(status.pools.decode).toHaveLength(1);
    expect(status.pools.prefill[0]).toMatchObject({ vendor: "NVIDIA", device: "nvidia-b200", emulated: true, kvFormat: NVIDIA_FORMAT });
    expect(status.pools.decode[0]).toMatchObject({ vendor: "Intel", device: "intel-gaudi3-hl325l", emulated: true, kvFormat: GAUDI_FORMAT });
    const workers = status.services.filter((s) => s.name === "tandem-prefill" || s.name === "tandem-decode");
    expect(workers.map((s) => [s.id, s.emulated]).sort()).toEqual([["decode-0", true], ["prefill-0", true]]);
    expect(status.services.find((s) => s.name === "tandem-gateway")?.emulated).toBe(false);
  });
});
