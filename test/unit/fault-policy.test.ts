import { describe, expect, it } from "vitest";
import { DriverFault, type FaultClass } from "../../src/engine/engine.ts";
import {
  backoffDelay,
  classifyCpu,
  classifyNvidia,
  decide,
  DEFAULT_QUARANTINE,
  FAULT_CLASSES,
  FAULT_POLICY,
  type FaultHistory,
} from "../../src/engine/faults/index.ts";

const fault = (faultClass: FaultClass, code = "x"): DriverFault =>
  new DriverFault({ vendor: "nvidia", code, message: "m", faultClass });

const fresh: FaultHistory = { now: 1_000_000, recentFaults: [], attempt: 0 };

describe("fault policy table", () => {
  it("has one row per class with the issue's actions", () => {
    expect(Object.keys(FAULT_POLICY).sort()).toEqual([...FAULT_CLASSES].sort());
    expect(FAULT_POLICY.transient.action).toBe("retry-in-place");
    expect(FAULT_POLICY.resource.action).toBe("shrink-and-retry");
    expect(FAULT_POLICY["device-reset"]).toMatchObject({ action: "restart-driver", kvLost: true });
    expect(FAULT_POLICY.fatal).toMatchObject({ action: "quarantine", removeFromRouting: true, alert: true });
    expect(FAULT_POLICY.interconnect.action).toBe("reroute-transfer");
  });
});

describe("decide", () => {
  it("transient: retries in place with growing, capped backoff, then re-routes", () => {
    const p = FAULT_POLICY.transient;
    const delays = [0, 1, 2].map((attempt) => decide(fault("transient"), { ...fresh, attempt }));
    for (const d of delays) expect(d).toMatchObject({ action: "retry-in-place", retry: true, quarantine: false, kvLost: false });
    expect(delays.map((d) => d.delayMs)).toEqual([50, 100, 200]);
    expect(decide(fault("transient"), { ...fresh, attempt: p.maxAttempts })).toMatchObject({
      action: "reroute-request",
      retry: false,
      rerouteRequest: true,
      quarantine: false,
    });
    expect(backoffDelay(p.backoff, 30)).toBe(p.backoff.maxMs);
  });

  it("resource: shrinks the batch and retries, never counts toward quarantine", () => {
    expect(decide(fault("resource"), fresh)).toMatchObject({ action: "shrink-and-retry", retry: true, shrinkBatch: true, kvLost: false });
    const busy = { ...fresh, recentFaults: Array.from({ length: 50 }, (_, i) => fresh.now - i) };
    expect(decide(fault("resource"), busy)).toMatchObject({ quarantine: false, faultsInWindow: 0, countsTowardQuarantine: false });
    expect(decide(fault("resource"), { ...fresh, attempt: 3 })).toMatchObject({ action: "reroute-request", retry: false });
  });

  it("device-reset: restarts the driver, KV lost, out of routing until back, not quarantined", () => {
    expect(decide(fault("device-reset"), fresh)).toMatchObject({
      action: "restart-driver",
      restartDriver: true,
      kvLost: true,
      removeFromRouting: true,
      rerouteRequest: true,
      retry: false,
      quarantine: false,
      alert: false,
    });
  });

  it("fatal: quarantines, removes from routing and alerts on the first occurrence", () => {
    expect(decide(fault("fatal"), fresh)).toMatchObject({
      action: "quarantine",
      quarantine: true,
      removeFromRouting: true,
      alert: true,
      kvLost: true,
      retry: false,
      rerouteRequest: true,
    });
  });

  it("interconnect: re-routes the transfer, then falls back to re-routing the request", () => {
    expect(decide(fault("interconnect"), fresh)).toMatchObject({ action: "reroute-transfer", rerouteTransfer: true, retry: true, quarantine: false });
    expect(decide(fault("interconnect"), { ...fresh, attempt: 2 })).toMatchObject({ action: "reroute-request", rerouteTransfer: false });
  });

  it("a rejected state load fails the request's payload, not the device", () => {
    const d = decide(classifyCpu("state_read_data: incompatible V transposition"), {
      ...fresh,
      recentFaults: [fresh.now - 1, fresh.now - 2, fresh.now - 3, fresh.now - 4, fresh.now - 5],
    });
    expect(d).toMatchObject({
      faultClass: "fatal",
      scope: "request",
      action: "reject-payload",
      quarantine: false,
      removeFromRouting: false,
      alert: false,
      retry: false,
      rerouteRequest: true,
      countsTowardQuarantine: false,
    });
  });

  it("uses real classified faults end to end", () => {
    expect(decide(classifyNvidia("Xid 79"), fresh).action).toBe("quarantine");
    expect(decide(classifyNvidia(700), fresh).action).toBe("restart-driver");
    expect(decide(classifyNvidia("CUDA out of memory"), fresh).action).toBe("shrink-and-retry");
    expect(decide(classifyNvidia("Xid 74"), fresh).action).toBe("reroute-transfer");
    expect(decide(classifyNvidia("Xid 94"), fresh).action).toBe("retry-in-place");
  });
});

describe("K faults in T → quarantine", () => {
  const rule = { maxFaults: 3, windowMs: 10_000 };
  const now = 50_000;

  it.each(["transient", "device-reset", "interconnect"] as const)("%s: quarantines at the K-th fault in the window, not before", (c) => {
    const one = decide(fault(c), { now, recentFaults: [now - 5_000] }, rule);
    expect(one).toMatchObject({ quarantine: false, faultsInWindow: 2 });
    const two = decide(fault(c), { now, recentFaults: [now - 5_000, now - 1] }, rule);
    expect(two).toMatchObject({ quarantine: true, action: "quarantine", alert: true, removeFromRouting: true, faultsInWindow: 3 });
  });

  it("ignores faults outside (now - T, now]", () => {
    const history = { now, recentFaults: [now - 10_000, now - 20_000, now + 1, now - 9_999] };
    expect(decide(fault("transient"), history, rule)).toMatchObject({ quarantine: false, faultsInWindow: 2 });
    const inside = { now, recentFaults: [now - 9_999, now] };
    expect(decide(fault("transient"), inside, rule)).toMatchObject({ quarantine: true, faultsInWindow: 3 });
  });

  it("walks a stream of faults and quarantines exactly at the K-th within T", () => {
    const times = [0, 4_000, 30_000, 31_000, 45_000, 46_000, 47_000];
    const seen: number[] = [];
    const quarantinedAt = times.find((t) => {
      const d = decide(fault("transient"), { now: t, recentFaults: seen }, rule);
      if (d.countsTowardQuarantine) seen.push(t);
      return d.quarantine;
    });
    // 30 s and 31 s make only two within 10 s; 45, 46, 47 s are three.
    expect(quarantinedAt).toBe(47_000);
  });

  it("uses 5 in 60 s by default", () => {
    expect(DEFAULT_QUARANTINE).toEqual({ maxFaults: 5, windowMs: 60_000 });
    const four = [1, 2, 3, 4].map((i) => now - i * 1000);
    expect(decide(fault("transient"), { now, recentFaults: four.slice(0, 3) }).quarantine).toBe(false);
    expect(decide(fault("transient"), { now, recentFaults: four }).quarantine).toBe(true);
  });

  it("is pure: same inputs, same decision, inputs untouched", () => {
    const recentFaults = Object.freeze([now - 1, now - 2]);
    const history = Object.freeze({ now, recentFaults, attempt: 1 });
    const a = decide(fault("interconnect"), history, rule);
    const b = decide(fault("interconnect"), history, rule);
    expect(a).toEqual(b);
    expect(recentFaults).toEqual([now - 1, now - 2]);
  });
});
