// `tandem simulate`: the discrete-event cluster simulator (src/sim) on one configuration at one arrival rate,
// a goodput search over rates, or the DistServe-style goodput comparison (--compare, JSON lines).
import { writeFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { type Accelerator, type AcceleratorCatalog, CatalogError, loadAcceleratorCatalog } from "../hardware/accelerator-catalog.ts";
import { findModel, MODELS } from "../hardware/model-catalog.ts";
import type { KvLink } from "../planner/kv-link.ts";
import { B200, GAUDI3, H100 } from "../planner/plan.ts";
import { choosePrices } from "../planner/pricing.ts";
import { WORKLOADS } from "../planner/workloads.ts";
import { type ArrivalSpec, makeArrivals } from "../sim/arrival-spec.ts";
import type { ClusterSpec, PoolSpec, Topology } from "../sim/cluster.ts";
import { bestGoodput, type Budget, type ComparisonContext, type Family, ratiosAgainst } from "../sim/comparison.ts";
import { GOODPUT_TARGET, searchGoodput } from "../sim/goodput.ts";
import { defaultDecodeBatch, defaultPrefillBatch, defaultTp, type PoolContext } from "../sim/pool-defaults.ts";
import { SimError, simulate } from "../sim/simulator.ts";
import { attainmentSvg, latencyCdfSvg } from "../sim/svg.ts";
import { readTrace, traceRate } from "../sim/trace.ts";
import { positiveInt, UsageError } from "./usage.ts";
import { dtypeOf, num, parseKvLink, parsePrices, parseSlo, parseWorkload, PLANNING_OPTIONS } from "./planning-flags.ts";

export const SIMULATE_HELP = `tandem simulate --model <id> --workload <preset> | --input N --output N
            --prefill <chip>[:devices[:tp]] --decode <chip>[:devices[:tp]] | --colocated <chip>[:devices[:tp]]
            --rate <req/s> | --goodput   [--seconds S] [--warmup S] [--seed N] [--gateways N]
            [--arrivals poisson|bursty|agentic|trace:<file>] [--prefill-batch N] [--decode-batch N]
            [--ttft-ms N] [--tpot-ms N] [--target F] [--prices low|mid|high|tco] [--price chip=USD_PER_HOUR ...]
            [--purchase chip=USD ...] [--tco-years N] [--usd-per-kwh N] [--pue N]
            [--bf16] [--kv-gbps N] [--kv-fixed-ms N] [--kv-translate-us N] [--catalog PATH] [--json] [--svg FILE]
  tandem simulate --compare [--model <id>,...] [--workload <preset>] [--devices N] [--shortlist K] [--seed N]
    Discrete-event simulation of a serving cluster: arrivals, the live gateway's placement policy
    (placeRequest), per-worker queues, batched prefill, continuous-batching decode under a KV memory limit,
    KV transfer over the link, or colocated prefill+decode with measured interference. Step times come from the
    hardware performance model. Chips are catalog ids or unique short names (h100, b200, gaudi3, mi300x).
    devices = chips in the pool (default: one group); tp defaults to the best throughput per chip.
    --rate prints TTFT/TPOT distributions (a trace without --rate replays at its own pace), SLO attainment, utilisation and $ per million tokens (input+output);
    --goodput searches the highest rate with ≥ --target (0.9) of requests meeting TTFT and TPOT; --svg writes
    the TTFT/TPOT CDFs (--rate) or attainment vs rate (--goodput). --compare prints, as JSON lines, the best
    goodput of colocated H100, H100:H100, B200:Gaudi 3 and colocated Gaudi 3 at equal device count and at the
    $/h of the H100 cluster, and the ratios against colocated H100 (defaults: llama-3-8b,llama-3-70b; chat; 8).
    Models: ${MODELS.map((m) => m.id).join(", ")}. Workloads: ${WORKLOADS.map((w) => w.id).join(", ")}. SLOs, prices (tco too) and fp8 as in tandem plan.`;


/** A catalog id, or a short name matching exactly one id's "-name" segment (h100 → nvidia-h100-sxm). */
export function resolveChip(catalog: AcceleratorCatalog, name: string): Accelerator {
  const lower = name.toLowerCase();
  const exact = catalog.accelerators.find((a) => a.id === lower);
  if (exact) return exact;
  const matches = catalog.accelerators.filter((a) => a.id.includes(`-${lower}`));
  if (matches.length === 1) return matches[0]!;
  const known = catalog.accelerators.map((a) => a.id).join(", ");
  throw new UsageError(matches.length === 0 ? `unknown chip "${name}"; known: ${known}` : `chip "${name}" is ambiguous: ${matches.map((a) => a.id).join(", ")}`);
}

/** Parses `<chip>[:devices[:tp]]` into a pool; batch from the flag or the default for the role. */
function parsePool(flag: string, raw: string, catalog: AcceleratorCatalog, ctx: PoolContext, role: "prefill" | "decode", batchFlag: number | undefined): PoolSpec {
  const [chipName, devicesRaw, tpRaw, extra] = raw.split(":");
  if (!chipName || extra !== undefined) throw new UsageError(`--${flag} expects <chip>[:devices[:tp]], got "${raw}"`);
  const chip = resolveChip(catalog, chipName);
  const tp = tpRaw !== undefined ? positiveInt(`${flag} tp`, tpRaw) : defaultTp(chip, ctx, role);
  if (tp === null) throw new UsageError(`--${flag}: ${ctx.model.id} does not fit on ${chip.id} at any TP for this workload and TPOT`);
  const devices = devicesRaw !== undefined && devicesRaw !== "" ? positiveInt(`${flag} devices`, devicesRaw) : tp;
  if (devices % tp !== 0) throw new UsageError(`--${flag}: ${devices} devices is not a whole number of TP${tp} groups`);
  const batch = batchFlag ?? (role === "prefill" ? defaultPrefillBatch(chip, ctx, tp) : defaultDecodeBatch(chip, ctx, tp));
  if (batch < 1) throw new UsageError(`--${flag}: no ${role} batch of ${ctx.model.id} fits ${chip.id} TP${tp} (memory or TPOT); try a larger tp`);
  return { chip, tp, groups: devices / tp, batch };
}

function parseArrivals(raw: string | undefined): ArrivalSpec {
  const v = raw ?? "poisson";
  if (v === "poisson" || v === "bursty" || v === "agentic") return { kind: v };
  if (v.startsWith("trace:") && v.length > 6) return { kind: "trace", records: readTrace(v.slice(6)) };
  throw new UsageError(`--arrivals must be poisson, bursty, agentic or trace:<file>, got "${v}"`);
}

const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;

const progress = (line: string) => process.stderr.write(`simulate: ${line}\n`);

/** Run `tandem simulate` with the arguments after `simulate`. Exit code 0 ok, 2 usage or configuration error. */
export async function runSimulate(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        ...PLANNING_OPTIONS,
        prefill: { type: "string" },
        decode: { type: "string" },
        colocated: { type: "string" },
        "prefill-batch": { type: "string" },
        "decode-batch": { type: "string" },
        rate: { type: "string" },
        goodput: { type: "boolean" },
        compare: { type: "boolean" },
        devices: { type: "string" },
        shortlist: { type: "string" },
        seconds: { type: "string" },
        warmup: { type: "string" },
        seed: { type: "string" },
        gateways: { type: "string" },
        arrivals: { type: "string" },
        target: { type: "string" },
      },
    });
    if (values.help) {
      process.stdout.write(`${SIMULATE_HELP}\n`);
      return 0;
    }
    const catalog = loadAcceleratorCatalog(values.catalog);
    const { pricePoint, priceOverrides, tco } = parsePrices(values, (id) => resolveChip(catalog, id).id);
    const prices = choosePrices(catalog, pricePoint, priceOverrides, tco);
    const link: KvLink = parseKvLink(values);
    const dtype = dtypeOf(values);
    const seed = values.seed === undefined ? 1 : positiveInt("seed", values.seed);
    const workload = parseWorkload(values, values.compare ? "chat" : undefined);
    const slo = parseSlo(values, workload);
    const target = num("target", values.target) ?? GOODPUT_TARGET;
    if (!(target > 0 && target <= 1)) throw new UsageError(`--target must be in (0, 1], got ${target}`);

    if (values.compare) {
      const devices = values.devices === undefined ? 8 : positiveInt("devices", values.devices);
      const shortlist = values.shortlist === undefined ? 3 : positiveInt("shortlist", values.shortlist);
      const families: Family[] = [
        { name: "colocated H100", kind: "colocated", prefillChip: H100, decodeChip: H100 },
        { name: "H100:H100", kind: "disaggregated", prefillChip: H100, decodeChip: H100 },
        { name: "B200:Gaudi 3", kind: "disaggregated", prefillChip: B200, decodeChip: GAUDI3 },
        { name: "colocated Gaudi 3", kind: "colocated", prefillChip: GAUDI3, decodeChip: GAUDI3 },
      ];
      const h100 = prices[H100];
      if (h100 === undefined) throw new UsageError(`no price for ${H100}`);
      const budgets: Budget[] = [{ kind: "devices", devices }, { kind: "usd", usdPerHour: devices * h100 }];
      for (const modelId of (values.model ?? "llama-3-8b,llama-3-70b").split(",")) {
        const model = findModel(modelId.trim());
        const ctx: ComparisonContext = { catalog, model, dtype, workload, slo, link, prices, seed, shortlist, onProgress: progress, searched: new Map() };
        for (const budget of budgets) {
          const rows = families.map((f) => bestGoodput(f, budget, ctx));
          for (const r of rows) process.stdout.write(`${JSON.stringify({ kind: "goodput", ...r })}\n`);
          process.stdout.write(`${JSON.stringify({ kind: "ratios", ...ratiosAgainst(rows, "colocated H100"), heterogeneousOverHomogeneous: rows[1]!.goodput > 0 ? rows[2]!.goodput / rows[1]!.goodput : null })}\n`);
        }
      }
      return 0;
    }

    if (!values.model) throw new UsageError("--model <id> is required");
    const model = findModel(values.model);
    const poolCtx: PoolContext = { model, dtype, workload, slo };
    const prefillBatch = values["prefill-batch"] === undefined ? undefined : positiveInt("prefill-batch", values["prefill-batch"]);
    const decodeBatch = values["decode-batch"] === undefined ? undefined : positiveInt("decode-batch", values["decode-batch"]);
    let topology: Topology;
    if (values.colocated !== undefined) {
      if (values.prefill !== undefined || values.decode !== undefined) throw new UsageError("give either --colocated or --prefill and --decode, not both");
      topology = { kind: "colocated", pool: parsePool("colocated", values.colocated, catalog, poolCtx, "decode", decodeBatch), prefillBatch: prefillBatch ?? 1 };
    } else if (values.prefill !== undefined && values.decode !== undefined) {
      topology = {
        kind: "disaggregated",
        prefill: parsePool("prefill", values.prefill, catalog, poolCtx, "prefill", prefillBatch),
        decode: parsePool("decode", values.decode, catalog, poolCtx, "decode", decodeBatch),
        link,
      };
    } else throw new UsageError("give --prefill <chip> and --decode <chip>, or --colocated <chip>");
    const gateways = values.gateways === undefined ? 1 : positiveInt("gateways", values.gateways);
    const cluster: ClusterSpec = { model, dtype, topology, gateways, prices };
    const arrivals = parseArrivals(values.arrivals);
    const seconds = num("seconds", values.seconds) ?? 600;
    const warmup = num("warmup", values.warmup, false);
    if (warmup !== undefined && warmup >= seconds) throw new UsageError(`--warmup (${warmup}) must be less than --seconds (${seconds})`);

    if (values.goodput) {
      if (values.rate !== undefined) throw new UsageError("give --rate or --goodput, not both");
      const r = searchGoodput({ cluster, workload, slo, arrivals, seconds, seed }, {
        target,
        onPoint: (p) => progress(`rate ${p.rate.toFixed(3)} req/s → attainment ${(p.attainment * 100).toFixed(1)}%`),
      });
      if (values.svg) writeFileSync(values.svg, attainmentSvg(r.points, r.target, `${model.name}, ${workload.id}: SLO attainment vs rate`));
      const s = r.atGoodput;
      if (values.json) process.stdout.write(`${JSON.stringify({ model: model.id, workload, arrivals: arrivals.kind, seed, ...r })}\n`);
      else {
        process.stdout.write(`${s?.cluster ?? ""}\ngoodput ${r.goodput.toFixed(3)} req/s at ≥ ${Math.round(target * 100)}% attainment (TTFT ≤ ${slo.ttftMs} ms, TPOT ≤ ${slo.tpotMs} ms); ${r.points.length} runs of ${seconds} s\n`);
        if (s) process.stdout.write(`at goodput: $${s.usdPerMtokWithinSlo.toFixed(4)} per million tokens within SLO, ${(r.goodput / s.devices).toFixed(3)} req/s per device\n`);
      }
      return r.goodput > 0 ? 0 : 1;
    }

    // A trace without --rate replays at its own pace.
    const rate = num("rate", values.rate) ?? (arrivals.kind === "trace" ? traceRate(arrivals.records) : undefined);
    if (rate === undefined) throw new UsageError("give --rate <req/s> or --goodput");
    const result = simulate({
      cluster,
      arrivals: makeArrivals(arrivals, rate, workload, seconds, seed),
      slo,
      seconds,
      ...(warmup !== undefined ? { warmupSeconds: warmup } : {}),
      onProgress: (t, events) => progress(`t = ${t.toFixed(0)} s simulated, ${events} events`),
    });
    const s = result.summary;
    if (values.svg) writeFileSync(values.svg, latencyCdfSvg(result.samples.ttftS, result.samples.tpotS, slo, `${model.name}, ${workload.id} at ${rate} req/s: ${s.cluster}`));
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ model: model.id, workload, arrivals: arrivals.kind, rate, seed, costUnit: "USD per million tokens (input + output)", ...s })}\n`);
      return 0;
    }
    const lines = [
      `${model.name} · ${workload.id} (${workload.inputTokens}/${workload.outputTokens}) · ${arrivals.kind} ${rate} req/s · ${s.cluster} · ${s.devices} devices, $${s.usdPerHour.toFixed(2)}/h`,
      `window ${s.window.start}–${s.window.end} s: ${s.requests.arrived} arrived, ${s.requests.completed} completed, ${s.requests.unfinished} unfinished; ${s.events} events`,
      `TTFT  p50 ${ms(s.ttftS.p50)}  p90 ${ms(s.ttftS.p90)}  p99 ${ms(s.ttftS.p99)}   (SLO ${slo.ttftMs} ms)`,
      `TPOT  p50 ${ms(s.tpotS.p50)}  p90 ${ms(s.tpotS.p90)}  p99 ${ms(s.tpotS.p99)}   (SLO ${slo.tpotMs} ms)`,
      `SLO attainment ${(s.sloAttainment * 100).toFixed(1)}%; throughput ${s.throughput.requestsPerS.toFixed(3)} req/s, ${s.throughput.tokensPerS.toFixed(0)} tok/s`,
      ...s.pools.map((p) => `${p.role} ${p.chip} ${p.groups}×TP${p.tp}: utilisation ${(p.utilisation * 100).toFixed(1)}%${p.occupancy === null ? "" : `, batch occupancy ${(p.occupancy * 100).toFixed(1)}%`}, peak KV ${p.peakKvTokens}/${p.kvTokenBudget} tokens, peak ${p.peakSequences}/${p.maxSequences} sequences`),
      `cost $${s.usdPerMtok.toFixed(4)} per million tokens served, $${s.usdPerMtokWithinSlo.toFixed(4)} per million tokens within SLO`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    return 0;
  } catch (e) {
    const err = e as Error;
    const known = e instanceof UsageError || e instanceof CatalogError || e instanceof SimError || err.name === "ModelError" || err.name === "TraceError" || err.name === "RangeError" ||
      (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    if (!known) throw e;
    process.stderr.write(`tandem simulate: ${err.message}\n${e instanceof UsageError ? SIMULATE_HELP + "\n" : ""}`);
    return 2;
  }
}
