// KV crosses incompatible layouts only translated: prefill with flash attention on, decode with it off (V
// transposed in llama.cpp's state) gives the monolithic tokens; formats with no translation path are refused
// with both named, and nothing is decoded.
import { afterEach, describe, expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { referenceTokens, startTestCluster, type TestCluster } from "../support/cluster.ts";

const PROMPTS = ["Once upon a time", "The little dog", "Lily wanted to play with her friend Tom in the park, but"];
let t: TestCluster | undefined;

afterEach(async () => {
  await t?.stop();
  t = undefined;
});

describe("KV translation between workers", () => {
  it("prefill with flash attention on, decode with it off: the state is translated and tokens equal the monolithic run", async () => {
    const reference = await referenceTokens(PROMPTS, 40);
    t = await startTestCluster({
      prefill: 1,
      decode: 1,
      prefillEnv: { TANDEM_FLASH_ATTENTION: "1" },
      decodeEnv: { TANDEM_FLASH_ATTENTION: "0" },
    });
    for (const prompt of PROMPTS) {
      const outcome = await generate(t.nc, t.subjects, { prompt, maxTokens: 40 });
      expect(outcome.final._tag, JSON.stringify(outcome.final)).toBe("GenerateDone");
      expect(outcome.tokens).toEqual(reference.get(prompt));
    }
  });

  it("formats with no translation path are refused with a typed error naming both formats", async () => {
    t = await startTestCluster({ prefill: 1, decode: 1, decodeEnv: { TANDEM_SEQUENCES: "4" } });
    const before = await t.brokerStats();
    const outcome = await generate(t.nc, t.subjects, { prompt: PROMPTS[0]!, maxTokens: 8 });
    expect(outcome.final._tag).toBe("GenerateFailed");
    if (outcome.final._tag !== "GenerateFailed") return;
    expect(outcome.final.error).toMatchObject({ code: "Unavailable", reason: "no_compatible_pair" });
    expect(outcome.final.error.message).toContain("seqs=8");
    expect(outcome.final.error.message).toContain("seqs=4");
    expect(outcome.chunks).toEqual([]); // nothing was prefilled or decoded
    expect((await t.brokerStats()).opened).toBe(before.opened);
  });
});
