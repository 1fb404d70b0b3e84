// Routing policy: a pure function from the live cluster view to a (prefill, decode) pair. It never touches
// NATS or clocks, so the simulator and the live gateway call the same code.

export interface WorkerView {
  readonly id: string;
  readonly role: "prefill" | "decode";
  readonly model: string;
  readonly kvFormat: string;
  /** Requests the worker reported in flight at its last heartbeat. */
  readonly inFlight: number;
  readonly capacity: number;
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
): PickResult => {
  const served = [...new Set(workers.map((w) => w.model))].sort();
  const wanted = model ?? served[0];
  if (wanted === undefined) return { _tag: "NoWorkers", role: "prefill", model: model ?? "(any)" };
  if (!served.includes(wanted)) return { _tag: "UnknownModel", model: wanted, served };
  const load = (w: WorkerView) => Math.max(w.inFlight, assigned.get(w.id) ?? 0) / Math.max(1, w.capacity);
  const ranked = (role: "prefill" | "decode") => {
    const pool = workers.filter((w) => w.role === role && w.model === wanted).sort((a, b) => a.id.localeCompare(b.id));
    const rotated = pool.map((_, i) => pool[(i + tieBreak) % pool.length]!);
    return rotated.sort((a, b) => load(a) - load(b));
  };
  const prefills = ranked("prefill");
  const decodes = ranked("decode");
  if (prefills.length === 0) return { _tag: "NoWorkers", role: "prefill", model: wanted };
  if (decodes.length === 0) return { _tag: "NoWorkers", role: "decode", model: wanted };
  if (!prefills.some((p) => decodes.some((d) => compatible(p.kvFormat, d.kvFormat)))) {
    const formats = (pool: ReadonlyArray<WorkerView>) => [...new Set(pool.map((w) => w.kvFormat))].sort();
    return { _tag: "NoCompatiblePair", model: wanted, prefillFormats: formats(prefills), decodeFormats: formats(decodes) };
  }
  // Prefer a pair that needs no translation; take a translating pair only when no exact one is free.
  const free = (w: WorkerView) => load(w) < maxLoad;
  for (const exactOnly of [true, false]) {
    for (const prefill of prefills.filter(free)) {
      const decode = decodes.find((d) =>
        free(d) && (exactOnly ? d.kvFormat === prefill.kvFormat : compatible(prefill.kvFormat, d.kvFormat))
      );
      if (decode) return { _tag: "Picked", prefill, decode };
    }
  }
  return { _tag: "Saturated", model: wanted };
};
