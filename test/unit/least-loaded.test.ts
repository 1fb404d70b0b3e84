import { describe, expect, it } from "vitest";
import { pickLeastLoaded, type WorkerView } from "../../src/policy/least-loaded.ts";

const worker = (id: string, role: "prefill" | "decode", inFlight = 0, extra: Partial<WorkerView> = {}): WorkerView => ({
  id,
  role,
  model: "m",
  kvFormat: "f",
  inFlight,
  capacity: 8,
  ...extra,
});

describe("least-loaded routing policy", () => {
  it("picks the least-loaded prefill and decode workers", () => {
    const pick = pickLeastLoaded([worker("p0", "prefill", 5), worker("p1", "prefill", 1), worker("d0", "decode", 0), worker("d1", "decode", 3)], new Map(), undefined, 0);
    expect(pick).toMatchObject({ _tag: "Picked", prefill: { id: "p1" }, decode: { id: "d0" } });
  });

  it("counts what this gateway assigned since the last heartbeat", () => {
    const pick = pickLeastLoaded([worker("p0", "prefill"), worker("d0", "decode"), worker("d1", "decode")], new Map([["d0", 4]]), undefined, 0);
    expect(pick).toMatchObject({ _tag: "Picked", decode: { id: "d1" } });
  });

  it("rotates among equally loaded workers", () => {
    const workers = [worker("p0", "prefill"), worker("p1", "prefill"), worker("d0", "decode")];
    const ids = [0, 1, 2, 3].map((i) => {
      const pick = pickLeastLoaded(workers, new Map(), undefined, i);
      return pick._tag === "Picked" ? pick.prefill.id : "";
    });
    expect(new Set(ids)).toEqual(new Set(["p0", "p1"]));
  });

  it("never pairs workers whose KV formats differ", () => {
    const pick = pickLeastLoaded([worker("p0", "prefill", 0, { kvFormat: "a" }), worker("d0", "decode", 0, { kvFormat: "b" })], new Map(), undefined, 0);
    expect(pick).toEqual({ _tag: "NoCompatiblePair", model: "m", prefillFormats: ["a"], decodeFormats: ["b"] });
  });

  it("pairs different formats when told they translate, preferring an exact pair while one is free", () => {
    const workers = [
      worker("p0", "prefill", 0, { kvFormat: "a" }),
      worker("d0", "decode", 0, { kvFormat: "b" }),
      worker("d1", "decode", 5, { kvFormat: "a" }),
    ];
    const translates = (x: string, y: string) => x === y || (x === "a" && y === "b");
    expect(pickLeastLoaded(workers, new Map(), undefined, 0, 2, translates)).toMatchObject({ prefill: { id: "p0" }, decode: { id: "d1" } });
    const busy = new Map([["d1", 16]]);
    expect(pickLeastLoaded(workers, busy, undefined, 0, 2, translates)).toMatchObject({ prefill: { id: "p0" }, decode: { id: "d0" } });
  });

  it("answers Saturated when every candidate is at its load cap, so the caller waits instead of piling on", () => {
    const workers = [worker("p0", "prefill"), worker("d0", "decode", 16)];
    expect(pickLeastLoaded(workers, new Map(), undefined, 0)).toEqual({ _tag: "Saturated", model: "m" });
    expect(pickLeastLoaded(workers, new Map(), undefined, 0, 3)._tag).toBe("Picked");
  });

  it("reports an unknown model with the models that are served", () => {
    expect(pickLeastLoaded([worker("p0", "prefill"), worker("d0", "decode")], new Map(), "other", 0)).toEqual({
      _tag: "UnknownModel",
      model: "other",
      served: ["m"],
    });
  });

  it("reports a missing pool", () => {
    expect(pickLeastLoaded([worker("p0", "prefill")], new Map(), undefined, 0)).toEqual({ _tag: "NoWorkers", role: "decode", model: "m" });
    expect(pickLeastLoaded([], new Map(), undefined, 0)._tag).toBe("NoWorkers");
  });
});
