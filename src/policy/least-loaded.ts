// Routing policy: a pure function from the live cluster view to a (prefill, decode) pair. It never touches
// NATS or clocks, so the simulator and the live gateway call the same code (./placement.ts, which also weighs
// free KV, translation and link costs and prefix affinity when the caller knows them).
import { placeRequest } from "./placement.ts";

export interface WorkerView {
  readonly id: string;
  readonly role: "prefill" | "decode";
  readonly model: string;
  readonly kvFormat: string;
  /** Requests the worker reported in flight at its last heartbeat. */
  readonly inFlight: number;
  readonly capacity: number;
  /** Decode workers: KV tokens the worker holds at most, and how many of them it could still take (last heartbeat). */
  readonly kvCapacityTokens?: number;
  readonly kvFreeTokens?: number;
  /** The machine the worker runs on; two workers on one host move KV over loopback. */
  readonly host?: string;
  /** Decode workers: the direct TCP KV listener, when there is one. */
  readonly kvTcp?: string;
}

export type PickFailure =
  | { readonly _tag: "UnknownModel"; readonly model: string; readonly served: ReadonlyArray<string> }
  | { readonly _tag: "NoWorkers"; readonly role: "prefill" | "decode"; readonly model: string }
  | {
    readonly _tag: "NoCompatiblePair";
    readonly model: string;
    readonly prefillFormats: ReadonlyArray<string>;
    readonly decodeFormats: ReadonlyArray<string>;
  }
  | { readonly _tag: "Saturated"; readonly model: string };

export type PickResult =
  | { readonly _tag: "Picked"; readonly prefill: WorkerView; readonly decode: WorkerView }
  | PickFailure;

/** Whether KV produced in one format can reach an engine of another (translated or not). */
export type KvCompatible = (prefillFormat: string, decodeFormat: string) => boolean;
const sameFormat: KvCompatible = (a, b) => a === b;

/** Load (in-flight over capacity) at which a worker takes no more work until some finishes. */
export const DEFAULT_MAX_LOAD = 2;

/**
 * Picks the least-loaded prefill and decode workers serving `model` (any model when undefined) whose KV
 * formats are `compatible` (equal, unless the caller knows translations). Load is the larger of what the worker reported and what this caller has assigned to it
 * since (`assigned`), over its capacity. Workers at `maxLoad` or above are skipped; when that leaves no
 * pair the answer is `Saturated` (wait, then ask again). `tieBreak` rotates among equally loaded workers.
 */
export const pickLeastLoaded = (
  workers: ReadonlyArray<WorkerView>,
  assigned: ReadonlyMap<string, number>,
  model: string | undefined,
  tieBreak: number,
  maxLoad = DEFAULT_MAX_LOAD,
  compatible: KvCompatible = sameFormat,
): PickResult =>
  placeRequest(workers, assigned, { model }, tieBreak, {
    maxLoad,
    translationCost: (from, to) => (from === to ? 0 : compatible(from, to) ? 1 : undefined),
  });
