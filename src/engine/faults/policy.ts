// What to do about a driver fault: a table from fault class to action, and a pure `decide` that applies it
// to one fault given the device's recent fault timestamps and how many times this operation was tried.
// Time is passed in (no clock is read), so the same inputs always give the same decision.
import type { DriverFault, FaultClass } from "../engine.ts";
import type { FaultScope } from "./rules.ts";
import { faultScope } from "./vendors.ts";

export const FAULT_CLASSES: ReadonlyArray<FaultClass> = ["transient", "resource", "device-reset", "fatal", "interconnect"];

export type FaultAction =
  /** Try the same operation again on the same device after a short backoff. */
  | "retry-in-place"
  /** Shrink the batch or evict KV (largest/idle sequences first), then retry on the same device. */
  | "shrink-and-retry"
  /** Restart the engine driver; every KV cache it held is gone, its requests migrate. */
  | "restart-driver"
  /** Take the device out of routing for good, raise an alert event; its requests migrate. */
  | "quarantine"
  /** Send the KV transfer over another path (another peer, the broker, or re-prefill). */
  | "reroute-transfer"
  /** The payload (e.g. a KV state) is bad, not the device: do not retry it; re-prefill or fail the request. */
  | "reject-payload"
  /** This worker's retry budget is spent: the request actor moves the request to another worker. */
  | "reroute-request";

export interface Backoff {
  readonly baseMs: number;
  readonly factor: number;
  readonly maxMs: number;
}

export interface ClassPolicy {
  readonly action: FaultAction;
  readonly description: string;
  /** Attempts of the same operation on this device after which the request is re-routed instead. */
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  readonly kvLost: boolean;
  readonly removeFromRouting: boolean;
  readonly alert: boolean;
  /** Whether the fault is evidence against the device's health (feeds the K-in-T quarantine rule). */
  readonly countsTowardQuarantine: boolean;
}

export const FAULT_POLICY: Readonly<Record<FaultClass, ClassPolicy>> = {
  transient: {
    action: "retry-in-place",
    description: "Retry in place with exponential backoff, at most maxAttempts times; then re-route the request.",
    maxAttempts: 3,
    backoff: { baseMs: 50, factor: 2, maxMs: 1_000 },
    kvLost: false,
    removeFromRouting: false,
    alert: false,
    countsTowardQuarantine: true,
  },
  resource: {
    action: "shrink-and-retry",
    description: "Shrink the batch or evict KV, then retry; after maxAttempts the request is re-routed (Overloaded if nowhere).",
    maxAttempts: 3,
    backoff: { baseMs: 10, factor: 2, maxMs: 200 },
    kvLost: false,
    removeFromRouting: false,
    alert: false,
    countsTowardQuarantine: false,
  },
  "device-reset": {
    action: "restart-driver",
    description: "Restart the engine driver (supervisor restart); KV on that device is gone, in-flight requests migrate; out of routing until it is back.",
    maxAttempts: 0,
    backoff: { baseMs: 0, factor: 1, maxMs: 0 },
    kvLost: true,
    removeFromRouting: true,
    alert: false,
    countsTowardQuarantine: true,
  },
  fatal: {
    action: "quarantine",
    description: "Quarantine the device: remove it from routing, raise an alert event; in-flight requests migrate.",
    maxAttempts: 0,
    backoff: { baseMs: 0, factor: 1, maxMs: 0 },
    kvLost: true,
    removeFromRouting: true,
    alert: true,
    countsTowardQuarantine: true,
  },
  interconnect: {
    action: "reroute-transfer",
    description: "Re-route the transfer (another peer, the broker copy); after maxAttempts fall back to re-prefill.",
    maxAttempts: 2,
    backoff: { baseMs: 20, factor: 2, maxMs: 500 },
    kvLost: false,
    removeFromRouting: false,
    alert: false,
    countsTowardQuarantine: true,
  },
};

/** K faults within T milliseconds quarantine the device. */
export interface QuarantineRule {
  readonly maxFaults: number;
  readonly windowMs: number;
}

export const DEFAULT_QUARANTINE: QuarantineRule = { maxFaults: 5, windowMs: 60_000 };

export interface FaultHistory {
  /** Current time, in the same unit and clock as `recentFaults` (milliseconds). */
  readonly now: number;
  /**
   * Timestamps of earlier faults on this device that count toward quarantine (the current fault is not
   * in the list; the caller appends it afterwards when `decision.countsTowardQuarantine`). Order does not
   * matter; entries outside (now - windowMs, now] are ignored.
   */
  readonly recentFaults: ReadonlyArray<number>;
  /** Attempts of this operation already made on this device before this fault (0 on the first failure). */
  readonly attempt?: number;
}

export interface FaultDecision {
  readonly faultClass: FaultClass;
  readonly scope: FaultScope;
  readonly action: FaultAction;
  /** Run the same operation again on this device after `delayMs`. */
  readonly retry: boolean;
  readonly delayMs: number;
  readonly shrinkBatch: boolean;
  readonly restartDriver: boolean;
  readonly kvLost: boolean;
  readonly removeFromRouting: boolean;
  readonly quarantine: boolean;
  readonly alert: boolean;
  readonly rerouteTransfer: boolean;
  /** The request actor should move the request to another worker (re-prefill or migrate). */
  readonly rerouteRequest: boolean;
  readonly countsTowardQuarantine: boolean;
  /** Faults in the window including this one (0 when this fault does not count). */
  readonly faultsInWindow: number;
  readonly reason: string;
}

export const backoffDelay = (backoff: Backoff, attempt: number): number =>
  Math.min(backoff.maxMs, backoff.baseMs * backoff.factor ** Math.max(0, attempt));

/** Faults in (now - windowMs, now], counting the current one. */
export const faultsInWindow = (history: FaultHistory, rule: QuarantineRule): number =>
  1 + history.recentFaults.filter((t) => t > history.now - rule.windowMs && t <= history.now).length;

const base = (fault: DriverFault, scope: FaultScope, p: ClassPolicy) => ({
  faultClass: fault.faultClass,
  scope,
  retry: false,
  delayMs: 0,
  shrinkBatch: false,
  restartDriver: false,
  kvLost: p.kvLost,
  removeFromRouting: p.removeFromRouting,
  quarantine: false,
  alert: p.alert,
  rerouteTransfer: false,
  rerouteRequest: false,
  countsTowardQuarantine: p.countsTowardQuarantine,
});

/** Pure: the action for `fault` given the device's recent faults and this operation's attempt count. */
export const decide = (
  fault: DriverFault,
  history: FaultHistory,
  rule: QuarantineRule = DEFAULT_QUARANTINE,
  policy: Readonly<Record<FaultClass, ClassPolicy>> = FAULT_POLICY,
): FaultDecision => {
  const p = policy[fault.faultClass];
  const scope = faultScope(fault);
  const tag = `${fault.vendor}/${fault.code} (${fault.faultClass})`;

  if (scope === "request") {
    return {
      ...base(fault, scope, p),
      action: "reject-payload",
      kvLost: false,
      removeFromRouting: false,
      alert: false,
      rerouteRequest: true,
      countsTowardQuarantine: false,
      faultsInWindow: 0,
      reason: `${tag}: the request's payload was rejected; the device is healthy, re-prefill or fail the request`,
    };
  }

  const inWindow = p.countsTowardQuarantine ? faultsInWindow(history, rule) : 0;
  const overLimit = p.countsTowardQuarantine && inWindow >= rule.maxFaults;
  if (fault.faultClass === "fatal" || overLimit) {
    return {
      ...base(fault, scope, p),
      action: "quarantine",
      kvLost: true,
      removeFromRouting: true,
      quarantine: true,
      alert: true,
      rerouteRequest: true,
      faultsInWindow: inWindow,
      reason:
        fault.faultClass === "fatal"
          ? `${tag}: fatal device fault, quarantine`
          : `${tag}: ${inWindow} faults within ${rule.windowMs} ms (limit ${rule.maxFaults}), quarantine`,
    };
  }

  const attempt = Math.max(0, history.attempt ?? 0);
  const exhausted = attempt >= p.maxAttempts;
  const common = { ...base(fault, scope, p), faultsInWindow: inWindow };
  if (fault.faultClass === "device-reset") {
    return {
      ...common,
      action: "restart-driver",
      restartDriver: true,
      rerouteRequest: true,
      reason: `${tag}: restart the driver; KV on this device is lost, migrate its requests`,
    };
  }
  // transient, resource, interconnect: bounded retries on this device, then re-route the request.
  if (exhausted) {
    return {
      ...common,
      action: "reroute-request",
      rerouteRequest: true,
      reason: `${tag}: ${attempt} attempts spent (limit ${p.maxAttempts}), re-route the request`,
    };
  }
  return {
    ...common,
    action: p.action,
    retry: true,
    delayMs: backoffDelay(p.backoff, attempt),
    shrinkBatch: fault.faultClass === "resource",
    rerouteTransfer: fault.faultClass === "interconnect",
    reason: `${tag}: attempt ${attempt + 1} of ${p.maxAttempts}, ${p.action}`,
  };
};
