// The core promise against real parts: a real nats-server, real prefill and decode processes running
// llama.cpp, KV moved between them over NATS in small chunks (so credits and reassembly are exercised).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selfCommand } from "../../src/cluster/local-cluster.ts";
import { Effect } from "effect";
import { generate } from "../../src/client/client.ts";
import { makeLlamaCppEngine } from "../../src/engine/llama-cpp.ts";
import { referenceTokens, startTestCluster, type TestCluster, modelPath } from "../support/cluster.ts";

const PROMPTS = ["Once upon a time", "The little dog", "Lily wanted to play with her friend Tom in the park, but"];
const MAX_TOKENS = 40;

let t: TestCluster;
let reference: Map<string, ReadonlyArray<number>>;
let promptLengths: Map<string, number>;

beforeAll(async () => {
  reference = new Map(await referenceTokens(PROMPTS, MAX_TOKENS));
  promptLengths = new Map(
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const engine = yield* makeLlamaCppEngine({ modelPath: modelPath() });
          const out: Array<[string, number]> = [];
          for (const p of PROMPTS) out.push([p, (yield* engine.tokenize(p)).length]);
          return out;
        }),
      ),
    ),
  );
  t = await startTestCluster({ prefill: 2, decode: 2, env: { TANDEM_KV_CHUNK_BYTES: "1024" } });
});

afterAll(async () => {
  await t?.stop();
});

describe("disaggregated serving", () => {
  it("streams exactly the monolithic greedy tokens for each prompt, prefilled and decoded in different processes, with KV bytes crossing NATS", async () => {
    const kvBytesSeen = { data: 0, credits: 0 };
    const sniffer = t.nc.subscribe(`tandem.v1.${t.subjects.cluster}.kv.>`, {
      callback: (_err, msg) => {
        if (msg.subject.endsWith(".data")) kvBytesSeen.data += msg.data.length;
        else kvBytesSeen.credits++;
      },
    });
    const before = await t.brokerStats();
    for (const prompt of PROMPTS) {
      const outcome = await generate(t.nc, t.subjects, { prompt, maxTokens: MAX_TOKENS });
      expect(outcome.final._tag).toBe("GenerateDone");
      if (outcome.final._tag !== "GenerateDone") return;
      expect(outcome.tokens).toEqual(reference.get(prompt));
      const { route } = outcome.final;
      expect(route.prefillPid).not.toBe(route.decodePid);
      expect(t.pids("prefill")).toContain(route.prefillPid);
      expect(t.pids("decode")).toContain(route.decodePid);
      expect(route.kvBytes).toBeGreaterThan(1024); // more than one 1 KiB chunk
    }
    await t.nc.flush();
    sniffer.unsubscribe();
    const after = await t.brokerStats();
    expect(after.completed - before.completed).toBe(PROMPTS.length);
    expect(after.bytesMoved).toBeGreaterThan(before.bytesMoved);
    expect(kvBytesSeen.data).toBeGreaterThan(after.bytesMoved - before.bytesMoved); // payload plus framing
    expect(kvBytesSeen.credits).toBeGreaterThan(PROMPTS.length); // credit flow really ran
    expect(after.activeLeases).toEqual([]);
  });

  it("completes 32 concurrent requests, each stream in order with no gap or duplicate and correct usage", async () => {
    const prompts = Array.from({ length: 32 }, (_, i) => PROMPTS[i % PROMPTS.length]!);
    const arrivals: number[][] = prompts.map(() => []);
    const outcomes = await Promise.all(
      prompts.map((prompt, i) =>
        generate(t.nc, t.subjects, { prompt, maxTokens: MAX_TOKENS, requestId: `c-${i}` }, { onChunk: (c) => arrivals[i]!.push(c.seq) })
      ),
    );
    const servedBy = new Set<number>();
    outcomes.forEach((outcome, i) => {
      expect(outcome.final._tag, JSON.stringify(outcome.final)).toBe("GenerateDone");
      if (outcome.final._tag !== "GenerateDone") return;
      expect(outcome.final.requestId).toBe(`c-${i}`);
      expect(outcome.duplicateChunks).toBe(0);
      expect(outcome.missingChunks).toBe(0);
      expect(arrivals[i]).toEqual(arrivals[i]!.map((_, k) => k)); // arrived in order 0,1,2,...
      expect(outcome.tokens).toEqual(reference.get(prompts[i]!));
      expect(outcome.final.usage.completionTokens).toBe(outcome.tokens.length);
      expect(outcome.final.usage.promptTokens).toBe(promptLengths.get(prompts[i]!));
      expect(outcome.final.chunks).toBe(outcome.chunks.length);
      servedBy.add(outcome.final.route.decodePid);
    });
    expect(servedBy.size).toBe(2); // both decode workers took part
    expect((await t.brokerStats()).activeLeases).toEqual([]);
  });

  it("answers max_tokens 1 from prefill alone without opening a KV transfer", async () => {
    const before = await t.brokerStats();
    const outcome = await generate(t.nc, t.subjects, { prompt: PROMPTS[0]!, maxTokens: 1 });
    expect(outcome.final._tag).toBe("GenerateDone");
    if (outcome.final._tag !== "GenerateDone") return;
    expect(outcome.tokens).toEqual(reference.get(PROMPTS[0]!)!.slice(0, 1));
    expect(outcome.final).toMatchObject({ finishReason: "length", usage: { completionTokens: 1 }, route: { kvBytes: 0, transferId: "" } });
    await t.nc.flush();
    const after = await t.brokerStats();
    expect(after.activeLeases).toEqual([]);
    expect(after.opened).toBe(before.opened);
    expect(after.bytesMoved).toBe(before.bytesMoved);
  });

  it("exposes every actor through NATS micro discovery ($SRV.PING / $SRV.STATS)", async () => {
    const names: string[] = [];
    for await (const s of await t.nc.services.client().ping()) names.push(s.name);
    expect(names.sort()).toEqual(["tandem-decode", "tandem-decode", "tandem-gateway", "tandem-kv-broker", "tandem-prefill", "tandem-prefill"]);
    let generateRequests = 0;
    for await (const s of await t.nc.services.client().stats("tandem-gateway")) {
      generateRequests += s.endpoints?.find((e) => e.name === "generate")?.num_requests ?? 0;
    }
    expect(generateRequests).toBeGreaterThanOrEqual(36);
  });

  it("tandem status shows both pools healthy, the services and the broker's counts", async () => {
    const [cmd, args] = selfCommand(["status", "--json"]);
    const { stdout } = await promisify(execFile)(cmd, args, {
      env: { ...process.env, NATS_URL: t.cluster.natsUrl, TANDEM_CLUSTER: t.subjects.cluster },
      timeout: 30_000,
    });
    const status = JSON.parse(stdout.trim().split("\n").at(-1)!);
    expect(status.pools.prefill.map((w: { id: string }) => w.id)).toEqual(["prefill-0", "prefill-1"]);
    expect(status.pools.decode.map((w: { id: string }) => w.id)).toEqual(["decode-0", "decode-1"]);
    expect([...status.pools.prefill, ...status.pools.decode].every((w: { healthy: boolean }) => w.healthy)).toBe(true);
    expect(status.pools.decode.every((w: { kvTcp?: string }) => /^127\.0\.0\.1:\d+$/.test(w.kvTcp ?? ""))).toBe(true);
    expect(status.services.map((s: { name: string }) => s.name).sort()).toEqual(
      ["tandem-decode", "tandem-decode", "tandem-gateway", "tandem-kv-broker", "tandem-prefill", "tandem-prefill"],
    );
    expect(status.broker.completed).toBeGreaterThanOrEqual(35);
    expect(status.broker.activeLeases).toBe(0);
  });
});
