import { encode } from "@msgpack/msgpack";
import { Effect, Exit } from "effect";
import { describe, expect, it } from "vitest";
import { decodeMessage, encodeMessage, GenerateRequest, KvChunk, subjectsFor, TandemError } from "../../src/protocol/index.ts";

const decodeRequest = decodeMessage(GenerateRequest);
const failureOf = (bytes: Uint8Array) => {
  const exit = Effect.runSyncExit(decodeRequest(bytes));
  if (Exit.isSuccess(exit)) throw new Error("expected a failure");
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")?.error as TandemError;
  return error;
};

describe("wire codec", () => {
  it("round-trips a GenerateRequest through msgpack, writing the current version", () => {
    const bytes = encodeMessage(GenerateRequest, { _tag: "GenerateRequest", prompt: "hi", maxTokens: 3 });
    expect(Effect.runSync(decodeRequest(bytes))).toEqual({ _tag: "GenerateRequest", v: 1, prompt: "hi", maxTokens: 3 });
  });

  it("carries KV bytes as msgpack bin and gives back a Uint8Array", () => {
    const payload = new Uint8Array([0, 1, 2, 255]);
    const bytes = encodeMessage(KvChunk, { _tag: "KvChunk", transferId: "t1", index: 0, bytes: payload, checksum: 7 });
    const decoded = Effect.runSync(decodeMessage(KvChunk)(bytes));
    expect(decoded.bytes).toBeInstanceOf(Uint8Array);
    expect([...decoded.bytes]).toEqual([0, 1, 2, 255]);
  });

  it("names the reason for each kind of bad message", () => {
    expect(failureOf(new Uint8Array([0xc1])).reason).toBe("malformed_message");
    expect(failureOf(encode("just a string")).reason).toBe("malformed_message");
    expect(failureOf(encode({ v: 1, prompt: "x" })).reason).toBe("malformed_message");
    expect(failureOf(encode({ _tag: "GenerateRequest", v: 2, prompt: "x" })).reason).toBe("unsupported_version");
    expect(failureOf(encode({ _tag: "GenerateRequest", prompt: "x" })).reason).toBe("unsupported_version");
    expect(failureOf(encode({ _tag: "GenerateRequest", v: 1, prompt: 1 })).reason).toBe("invalid_field");
    expect(failureOf(encode({ _tag: "GenerateRequest", v: 1, prompt: "x", maxTokens: 1.5 })).reason).toBe("invalid_field");
    expect(failureOf(encode({ _tag: "Other", v: 1, prompt: "x" })).reason).toBe("invalid_field");
  });
});

describe("subjects", () => {
  it("builds every subject under tandem.v1.<cluster>", () => {
    const s = subjectsFor("prod-eu");
    expect(s.generate).toBe("tandem.v1.prod-eu.generate");
    expect(s.worker("decode-1", "decode")).toBe("tandem.v1.prod-eu.worker.decode-1.decode");
    expect(s.kvData("t42")).toBe("tandem.v1.prod-eu.kv.t42.data");
    expect(s.membersBucket).toBe("tandem_prod-eu_members");
  });

  it("refuses tokens that would change a subject's shape", () => {
    expect(() => subjectsFor("a.b")).toThrow(/not a valid subject token/);
    expect(() => subjectsFor("local").worker("x.*", "decode")).toThrow(/not a valid subject token/);
    expect(() => subjectsFor("local").kvData(">")).toThrow(/not a valid subject token/);
  });
});
