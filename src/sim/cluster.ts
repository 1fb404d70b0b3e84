// What is simulated: a disaggregated cluster (a prefill pool and a decode pool joined by a KV link) or a
// colocated one (every group prefills and decodes), each pool made of groups of `tp` chips of one kind.
import type { Accelerator } from "../hardware/accelerator-catalog.ts";
import type { Dtype, ModelSpec } from "../hardware/model-catalog.ts";
import type { KvLink } from "../planner/kv-link.ts";

export interface PoolSpec {
  readonly chip: Accelerator;
  /** Chips per group (tensor parallel). */
  readonly tp: number;
  readonly groups: number;
  /** Prefill: prompts per forward. Decode and colocated: sequences in the continuous batch. */
  readonly batch: number;
}

export type Topology =
  | { readonly kind: "disaggregated"; readonly prefill: PoolSpec; readonly decode: PoolSpec; readonly link: KvLink }
  | { readonly kind: "colocated"; readonly pool: PoolSpec; readonly prefillBatch: number };

export interface ClusterSpec {
  readonly model: ModelSpec;
  readonly dtype: Dtype;
  readonly topology: Topology;
  /**
   * Gateways, each routing over its own share of the workers (worker i belongs to gateway i mod gateways);
   * arrivals go to gateways round-robin. 1 = one gateway that sees every worker.
   */
  readonly gateways: number;
  /** $ per chip-hour by chip id. */
  readonly prices: Readonly<Record<string, number>>;
}

export const pools = (t: Topology): readonly PoolSpec[] => (t.kind === "disaggregated" ? [t.prefill, t.decode] : [t.pool]);

export const deviceCount = (t: Topology): number => pools(t).reduce((n, p) => n + p.tp * p.groups, 0);

/** The cluster's price per hour; throws when a chip has no price. */
export function usdPerHour(spec: ClusterSpec): number {
  return pools(spec.topology).reduce((sum, p) => {
    const price = spec.prices[p.chip.id];
    if (price === undefined) throw new RangeError(`no price for chip "${p.chip.id}"; give one`);
    return sum + price * p.tp * p.groups;
  }, 0);
}

/** "b200:4x1 → gaudi3:8x1" style label (chip:groups×tp). */
export function describeTopology(t: Topology): string {
  const pool = (p: PoolSpec) => `${p.chip.id}:${p.groups}x${p.tp}(b${p.batch})`;
  return t.kind === "disaggregated" ? `${pool(t.prefill)} -> ${pool(t.decode)}` : `colocated ${pool(t.pool)}`;
}
