// `tandem plan`: the cheapest chip mix (disaggregated or colocated) that serves a workload under an SLO,
// with the Pareto frontier, baseline ratios and break-even prices. Closed form (src/planner), not a simulation.
import { writeFileSync } from "node:fs";
import { UsageError } from "./usage.ts";
import process from "node:process";
import { parseArgs } from "node:util";
import { loadAcceleratorCatalog } from "../hardware/accelerator-catalog.ts";
import { findModel, MODELS } from "../hardware/model-catalog.ts";
import { choosePrices } from "../planner/pricing.ts";
import { plan } from "../planner/plan.ts";
import { frontierSvg } from "../planner/svg.ts";
import { WORKLOADS } from "../planner/workloads.ts";
import { dtypeOf, num, parseKvLink, parsePrices, parseSlo, parseWorkload, PLANNING_OPTIONS } from "./planning-flags.ts";

export const PLAN_HELP = `tandem plan --model <id> --workload <preset> | --input N --output N
            [--ttft-ms N] [--tpot-ms N] [--percentile P] [--prices low|mid|high|tco] [--price chip=USD_PER_HOUR ...]
            [--purchase chip=USD ...] [--tco-years N] [--usd-per-kwh N] [--pue N]
            [--chips id,id,...] [--bf16] [--kv-gbps N] [--kv-fixed-ms N] [--kv-translate-us N]
            [--catalog PATH] [--json] [--svg FILE]
    Search prefill chip × decode chip × tensor parallel × batch × pool sizes, plus colocated baselines, for the
    lowest $ per million tokens (input + output) meeting TTFT and TPOT at the percentile (closed-form model).
    Models: ${MODELS.map((m) => m.id).join(", ")}. Workloads: ${WORKLOADS.map((w) => `${w.id} (${w.inputTokens}/${w.outputTokens})`).join(", ")}.
    Prices: the catalog range's low, mid (default) or high point; chips without an hourly price but with a purchase
    estimate are priced at the H100's hourly/purchase ratio. tco: the cost of owning each chip, purchase ÷ (years ×
    8760 h) + TDP × PUE × $/kWh (defaults 4 years, PUE 1.3, $0.10/kWh); --purchase sets a chip's price (the
    catalog has none for B200). Weights and KV are fp8 unless --bf16.`;


const pad = (s: string, n: number) => (s.length >= n ? s : s + " ".repeat(n - s.length));

/** Run `tandem plan` with the arguments after `plan`. Returns the exit code (0 ok, 2 usage error, 1 no plan). */
export async function runPlan(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        ...PLANNING_OPTIONS,
        percentile: { type: "string" },
        chips: { type: "string" },
      },
    });
    if (values.help) {
      process.stdout.write(`${PLAN_HELP}\n`);
      return 0;
    }
    if (!values.model) throw new UsageError("--model <id> is required");
    const model = findModel(values.model);
    const workload = parseWorkload(values);
    const percentile = num("percentile", values.percentile);
    if (percentile !== undefined && !(percentile > 0 && percentile < 1)) throw new UsageError(`--percentile must be in (0, 1), got ${percentile}`);
    const slo = parseSlo(values, workload, percentile);
    const catalog = loadAcceleratorCatalog(values.catalog);
    const { pricePoint, priceOverrides, tco } = parsePrices(values, (id) => {
      if (!catalog.accelerators.some((a) => a.id === id)) throw new UsageError(`unknown chip "${id}" (catalog ids: ${catalog.accelerators.map((a) => a.id).join(", ")})`);
      return id;
    });
    const link = parseKvLink(values);
    const chips = values.chips?.split(",").map((s) => s.trim()).filter(Boolean);
    const priced = choosePrices(catalog, pricePoint, priceOverrides, tco);
    const unpriced = (chips ?? []).filter((id) => !(id in priced));
    if (unpriced.length > 0) {
      const how = pricePoint === "tco" ? "a purchase price and a TDP (give --purchase chip=USD)" : "an hourly price (give --price chip=USD_PER_HOUR)";
      throw new UsageError(`cannot price ${unpriced.join(", ")}: the catalog lacks ${how}`);
    }
    const out = plan({ catalog, model, workload, slo, link, dtype: dtypeOf(values), pricePoint, priceOverrides, tco, ...(chips ? { chips } : {}) });
    if (values.svg) writeFileSync(values.svg, frontierSvg(out.all, out.frontier, `${model.name}, ${workload.id}: $/Mtok vs tokens/s per user`));
    if (values.json) {
      const { all: _all, ...rest } = out;
      process.stdout.write(`${JSON.stringify({ model: model.id, workload, slo, link, dtype: dtypeOf(values), pricePoint, ...(pricePoint === "tco" ? { tco } : {}), costUnit: "USD per million tokens (input + output)", ...rest })}\n`);
      return 0;
    }
    const lines: string[] = [];
    const overridden = Object.entries(priceOverrides).map(([id, usd]) => `${id} $${usd}/h`);
    const priceLabel = `${pricePoint} prices${overridden.length > 0 ? ` except ${overridden.join(", ")}` : ""}`;
    lines.push(`${model.name} · ${workload.id} (${workload.inputTokens} in / ${workload.outputTokens} out) · TTFT ≤ ${slo.ttftMs} ms, TPOT ≤ ${slo.tpotMs} ms at p${Math.round(slo.percentile * 100)} · ${dtypeOf(values)} · ${priceLabel}`);
    if (pricePoint === "tco") {
      lines.push(`ownership cost over ${tco.years} years, PUE ${tco.pue}, $${tco.usdPerKwh}/kWh, $/chip-hour: ${Object.entries(out.prices).map(([id, usd]) => `${id} ${usd.toFixed(3)}`).join(", ")}`);
    }
    lines.push(`${out.evaluated} configurations evaluated; $ per million tokens (input + output)`);
    lines.push("");
    lines.push(`${pad("pair (prefill:decode)", 44)} ${pad("$/Mtok", 9)} ${pad("tp p/d", 7)} ${pad("batch p/d", 10)} ${pad("groups p:d", 11)} tok/s/user`);
    for (const c of out.bestByPair.slice(0, 20)) {
      lines.push(`${pad(c.pair, 44)} ${pad(c.usdPerMtok.toFixed(4), 9)} ${pad(`${c.prefillTp}/${c.decodeTp}`, 7)} ${pad(`${c.prefillBatch}/${c.decodeBatch}`, 10)} ${pad(`${c.prefillGroups}:${c.decodeGroups}`, 11)} ${c.interactivity.toFixed(1)}`);
    }
    lines.push("");
    lines.push(`winner: ${out.winner.pair} at $${out.winner.usdPerMtok.toFixed(4)}/Mtok`);
    for (const [name, r] of Object.entries(out.ratios)) {
      if (r.winnerAdvantage !== null) lines.push(`  ${pad(name, 36)} $${r.usdPerMtok!.toFixed(4)}  → winner ${r.winnerAdvantage.toFixed(2)}x cheaper`);
    }
    lines.push("Pareto frontier (tok/s/user → $/Mtok): " + out.frontier.map((c) => `${c.interactivity.toFixed(0)}→${c.usdPerMtok.toFixed(3)} ${c.pair}`).join("; "));
    lines.push("break-even prices:");
    for (const b of out.breakEvens) lines.push(`  ${pad(b.chip, 22)} $${b.currentUsdPerHour.toFixed(2)}/h → ${b.direction} $${b.breakEvenUsdPerHour.toFixed(2)}/h the winner becomes ${b.newWinner}`);
    process.stdout.write(`${lines.join("\n")}\n`);
    return out.winner ? 0 : 1;
  } catch (e) {
    process.stderr.write(`tandem plan: ${(e as Error).message}\n${e instanceof UsageError ? PLAN_HELP + "\n" : ""}`);
    return 2;
  }
}
