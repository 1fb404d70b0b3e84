// Bad input never hangs and never kills the actor: each case gets a typed GenerateFailed within 100 ms on a
// real cluster, and the next valid request on the same gateway succeeds.
import { encode } from "@msgpack/msgpack";
import { Effect } from "effect";
import { createInbox } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { decodeMessage, GenerateReply } from "../../src/protocol/index.ts";
import { startTestCluster, type TestCluster } from "../support/cluster.ts";

let t: TestCluster;

beforeAll(async () => {
  t = await startTestCluster({ prefill: 1, decode: 1 });
  const warm = await generate(t.nc, t.subjects, { prompt: "Once upon a time", maxTokens: 4 });
  expect(warm.final._tag).toBe("GenerateDone");
});

afterAll(async () => {
  await t?.stop();
});

/** Publishes raw bytes to the generate subject; resolves with the first reply and how long it took. */
const sendRaw = async (payload: Uint8Array) => {
  const inbox = t.nc.subscribe(createInbox(), { max: 1 });
  const started = performance.now();
  t.nc.publish(t.subjects.generate, payload, { reply: inbox.getSubject() });
  const timer = setTimeout(() => inbox.unsubscribe(), 5_000);
  for await (const msg of inbox) {
    clearTimeout(timer);
    const elapsedMs = performance.now() - started;
    const reply = await Effect.runPromise(decodeMessage(GenerateReply)(msg.data));
    return { reply, elapsedMs };
  }
  throw new Error("no reply within 5 s");
};

const request = (fields: Record<string, unknown>) => encode({ _tag: "GenerateRequest", v: 1, prompt: "Once upon a time", ...fields });

const expectRejected = async (payload: Uint8Array, code: string, reason: string) => {
  const { reply, elapsedMs } = await sendRaw(payload);
  expect(reply._tag).toBe("GenerateFailed");
  if (reply._tag !== "GenerateFailed") return;
  expect(reply.error.code).toBe(code);
  expect(reply.error.reason).toBe(reason);
  expect(reply.error.message.length).toBeGreaterThan(10);
  expect(elapsedMs).toBeLessThan(100);
  const next = await generate(t.nc, t.subjects, { prompt: "The little dog", maxTokens: 8 });
  expect(next.final._tag).toBe("GenerateDone");
  expect(next.tokens.length).toBe(8);
};

describe("bad input gets a typed error and the gateway keeps serving", () => {
  it("malformed msgpack → InvalidRequest malformed_message", () => expectRejected(new Uint8Array([0xc1, 0x00, 0xff]), "InvalidRequest", "malformed_message"));

  it("a msgpack value that is not a map → InvalidRequest malformed_message", () => expectRejected(encode([1, 2, 3]), "InvalidRequest", "malformed_message"));

  it("an unknown future schema version → InvalidRequest unsupported_version", () => expectRejected(request({ v: 99 }), "InvalidRequest", "unsupported_version"));

  it("an old schema version (v0) → InvalidRequest unsupported_version", () => expectRejected(request({ v: 0 }), "InvalidRequest", "unsupported_version"));

  it("wrong field types (prompt as a number) → InvalidRequest invalid_field", () => expectRejected(request({ prompt: 42 }), "InvalidRequest", "invalid_field"));

  it("wrong field types (maxTokens as a string) → InvalidRequest invalid_field", () => expectRejected(request({ maxTokens: "ten" }), "InvalidRequest", "invalid_field"));

  it("empty prompt → InvalidRequest empty_prompt", () => expectRejected(request({ prompt: "   " }), "InvalidRequest", "empty_prompt"));

  it("max_tokens of 0 → InvalidRequest max_tokens_out_of_range", () => expectRejected(request({ maxTokens: 0 }), "InvalidRequest", "max_tokens_out_of_range"));

  it("negative max_tokens → InvalidRequest max_tokens_out_of_range", () => expectRejected(request({ maxTokens: -5 }), "InvalidRequest", "max_tokens_out_of_range"));

  it("max_tokens above the limit → InvalidRequest max_tokens_out_of_range", () => expectRejected(request({ maxTokens: 100_000 }), "InvalidRequest", "max_tokens_out_of_range"));

  it("a prompt longer than the context → InvalidRequest prompt_too_long", () =>
    expectRejected(request({ prompt: "Once upon a time there was a dog. ".repeat(80), maxTokens: 8 }), "InvalidRequest", "prompt_too_long"));

  it("an unknown model → InvalidRequest unknown_model", () => expectRejected(request({ model: "llama-3-405b" }), "InvalidRequest", "unknown_model"));

  it("a request over the gateway's size limit (300 KiB, under NATS max_payload) → InvalidRequest payload_too_large", () =>
    expectRejected(request({ prompt: "a".repeat(300 * 1024) }), "InvalidRequest", "payload_too_large"));

  it("a request over NATS max_payload is refused by the client with a typed error and the connection survives", async () => {
    const maxPayload = t.nc.info!.max_payload;
    const outcome = await generate(t.nc, t.subjects, { prompt: "a".repeat(maxPayload + 1) });
    expect(outcome.final._tag).toBe("GenerateFailed");
    if (outcome.final._tag === "GenerateFailed") expect(outcome.final.error).toMatchObject({ code: "InvalidRequest", reason: "payload_too_large" });
    expect(t.nc.isClosed()).toBe(false);
    const next = await generate(t.nc, t.subjects, { prompt: "Once upon a time", maxTokens: 8 });
    expect(next.final._tag).toBe("GenerateDone");
  });

  it("a timeout out of range → InvalidRequest invalid_field", () => expectRejected(request({ timeoutMs: 0 }), "InvalidRequest", "invalid_field"));
});
