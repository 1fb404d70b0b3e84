// A planner configuration (src/planner) as a simulated cluster, and the request rate the planner sized it for:
// the cross-check runs the simulator on exactly what the closed form priced.
import { type AcceleratorCatalog, findAccelerator } from "../hardware/accelerator-catalog.ts";
import type { Dtype, ModelSpec } from "../hardware/model-catalog.ts";
import type { PlanConfig } from "../planner/evaluate.ts";
import type { KvLink } from "../planner/kv-link.ts";
import type { Workload } from "../planner/workloads.ts";
import type { ClusterSpec } from "./cluster.ts";

export interface PlanContext {
  readonly catalog: AcceleratorCatalog;
  readonly model: ModelSpec;
  readonly dtype: Dtype;
  readonly link: KvLink;
  readonly prices: Readonly<Record<string, number>>;
}

export function clusterFromPlan(c: PlanConfig, ctx: PlanContext, gateways = 1): ClusterSpec {
  const prefillChip = findAccelerator(ctx.catalog, c.prefillChip);
  const decodeChip = findAccelerator(ctx.catalog, c.decodeChip);
  const topology = c.kind === "disaggregated"
    ? {
      kind: "disaggregated" as const,
      prefill: { chip: prefillChip, tp: c.prefillTp, groups: c.prefillGroups, batch: c.prefillBatch },
      decode: { chip: decodeChip, tp: c.decodeTp, groups: c.decodeGroups, batch: c.decodeBatch },
      link: ctx.link,
    }
    : { kind: "colocated" as const, pool: { chip: decodeChip, tp: c.decodeTp, groups: c.decodeGroups, batch: c.decodeBatch }, prefillBatch: c.prefillBatch };
  return { model: ctx.model, dtype: ctx.dtype, topology, gateways, prices: ctx.prices };
}

/** Requests/s the planner assumed: its $/h divided by its $ per request. */
export function plannedRate(c: PlanConfig, prices: Readonly<Record<string, number>>, workload: Workload): number {
  const usdPerHour = c.kind === "disaggregated"
    ? c.prefillGroups * c.prefillTp * prices[c.prefillChip]! + c.decodeGroups * c.decodeTp * prices[c.decodeChip]!
    : c.decodeGroups * c.decodeTp * prices[c.decodeChip]!;
  const usdPerRequest = (c.usdPerMtok * (workload.inputTokens + workload.outputTokens)) / 1e6;
  return usdPerHour / 3600 / usdPerRequest;
}
