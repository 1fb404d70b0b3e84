// The receiving side of a transfer refuses to land anything once it is over: after it failed, or after its
// consumer gave the payload back (to a pool that may already have handed it to another transfer), every chunk
// is "closed" — the NATS bulk sink and the TCP receiver then read past it instead of writing into the payload.
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { kvLayout } from "../../src/kv/chunking.ts";
import { internal } from "../../src/protocol/index.ts";
import { KvReassembly, layerQueue, offerFor, wholeKv } from "../../src/transport/kv-transfer.ts";

const reassembly = () => {
  const payload = wholeKv(new Uint8Array(10_000), "fmt");
  const layout = kvLayout(payload.layerBytes, 4096);
  const offer = { ...offerFor("t", payload, layout), v: 1 as const };
  return new KvReassembly(offer, layout, Effect.runSync(layerQueue));
};

describe("KvReassembly after the transfer is over", () => {
  it("takes a chunk of the offer while open", () => {
    const r = reassembly();
    expect(r.accepts(0, 4096)).toBe("new");
    expect(r.accepts(2, 10_000 - 8192)).toBe("new");
    expect(r.accepts(3, 4096)).toBe("invalid");
  });

  it("lands nothing once it has failed", () => {
    const r = reassembly();
    r.fail(internal("kv_protocol", "test"));
    expect(r.accepts(0, 4096)).toBe("closed");
  });

  it("lands nothing once its payload has been given back", () => {
    const r = reassembly();
    r.incoming.release();
    expect(r.accepts(1, 4096)).toBe("closed");
  });
});
