// Accelerator catalog: typed view of `../shared/data/hardware-catalog.json` (relative to the project root).
//
// This is the one module of src/hardware that touches the outside world: it reads the catalog file with
// `node:fs` (supported by Node and Deno). Everything else in src/hardware is pure and only imports the
// types and the pure helpers (`parseAcceleratorCatalog`, `applyAcceleratorOverrides`) from here.
//
// Every price and efficiency (indeed every numeric field) can be overridden by the caller with a partial
// object per accelerator id; overrides are merged over the file's values, never written back.
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export interface MeasuredChip {
  readonly date?: string;
  readonly bf16_matmul_tflops?: number;
  readonly fp8_matmul_tflops?: number;
  readonly hbm_copy_gbps?: number;
  readonly pcie_d2h_gbps?: number;
  readonly pcie_h2d_gbps?: number;
  readonly see?: string;
}

export interface Accelerator {
  readonly id: string;
  readonly vendor: string;
  /** Dense bf16 peak, TFLOP/s (what the vendor sustains; `bf16_tflops_spec` is the headline if different). */
  readonly bf16_tflops: number;
  /** Dense fp8 peak, TFLOP/s; null when the chip has no fp8 matmul (then fp8 runs at the bf16 peak). */
  readonly fp8_tflops: number | null;
  readonly hbm_gb: number;
  /** HBM bandwidth, TB/s (10^12 bytes/s). */
  readonly hbm_tbps: number;
  /** Scale-up link bandwidth per chip, one direction, GB/s (NVLink, Infinity Fabric, Gaudi RoCE, ICI). */
  readonly scaleup_gbps_uni: number | null;
  readonly tdp_w: number | null;
  readonly usd_per_hour_low: number | null;
  readonly usd_per_hour_high: number | null;
  readonly purchase_usd_estimate: number | null;
  /** Best measured matmul fraction of the spec peak (MAMF); null when nobody published one. */
  readonly mamf_bf16_efficiency: number | null;
  readonly mamf_fp8_efficiency: number | null;
  readonly fp8_format: string;
  readonly sources: readonly string[];
  readonly bf16_tflops_spec?: number;
  readonly fp8_tflops_spec?: number;
  readonly measured?: MeasuredChip;
}

/** What a caller may change on an accelerator: any field except its id and sources. */
export type AcceleratorOverride = Partial<Omit<Accelerator, "id" | "sources">>;
export type AcceleratorOverrides = Readonly<Record<string, AcceleratorOverride>>;

export interface AcceleratorCatalog {
  readonly about: string;
  readonly accelerators: readonly Accelerator[];
}

export class CatalogError extends Error {
  override readonly name = "CatalogError";
}

const NUMBER_FIELDS = ["bf16_tflops", "hbm_gb", "hbm_tbps"] as const;
const NULLABLE_NUMBER_FIELDS = [
  "fp8_tflops",
  "scaleup_gbps_uni",
  "tdp_w",
  "usd_per_hour_low",
  "usd_per_hour_high",
  "purchase_usd_estimate",
  "mamf_bf16_efficiency",
  "mamf_fp8_efficiency",
] as const;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Validate parsed JSON into a catalog (pure). Throws CatalogError naming the entry and field. */
export function parseAcceleratorCatalog(json: unknown): AcceleratorCatalog {
  if (!isRecord(json) || !Array.isArray(json.accelerators)) {
    throw new CatalogError("hardware catalog: expected an object with an `accelerators` array");
  }
  const seen = new Set<string>();
  const accelerators = json.accelerators.map((raw, i): Accelerator => {
    if (!isRecord(raw) || typeof raw.id !== "string" || raw.id === "") {
      throw new CatalogError(`hardware catalog: accelerators[${i}] has no string id`);
    }
    const id = raw.id;
    if (seen.has(id)) throw new CatalogError(`hardware catalog: duplicate accelerator id "${id}"`);
    seen.add(id);
    for (const f of NUMBER_FIELDS) {
      const v = raw[f];
      if (typeof v !== "number" || !(v > 0)) throw new CatalogError(`hardware catalog: ${id}.${f} must be a positive number`);
    }
    for (const f of NULLABLE_NUMBER_FIELDS) {
      const v = raw[f];
      if (v !== null && v !== undefined && (typeof v !== "number" || !Number.isFinite(v) || v < 0)) {
        throw new CatalogError(`hardware catalog: ${id}.${f} must be a non-negative number or null`);
      }
    }
    const nullable = (f: (typeof NULLABLE_NUMBER_FIELDS)[number]) => (typeof raw[f] === "number" ? (raw[f] as number) : null);
    return {
      ...(raw as object),
      id,
      vendor: typeof raw.vendor === "string" ? raw.vendor : "unknown",
      bf16_tflops: raw.bf16_tflops as number,
      hbm_gb: raw.hbm_gb as number,
      hbm_tbps: raw.hbm_tbps as number,
      fp8_tflops: nullable("fp8_tflops"),
      scaleup_gbps_uni: nullable("scaleup_gbps_uni"),
      tdp_w: nullable("tdp_w"),
      usd_per_hour_low: nullable("usd_per_hour_low"),
      usd_per_hour_high: nullable("usd_per_hour_high"),
      purchase_usd_estimate: nullable("purchase_usd_estimate"),
      mamf_bf16_efficiency: nullable("mamf_bf16_efficiency"),
      mamf_fp8_efficiency: nullable("mamf_fp8_efficiency"),
      fp8_format: typeof raw.fp8_format === "string" ? raw.fp8_format : "unknown",
      sources: Array.isArray(raw.sources) ? raw.sources.filter((s): s is string => typeof s === "string") : [],
      ...(isRecord(raw.measured) ? { measured: raw.measured as MeasuredChip } : {}),
    };
  });
  return { about: typeof json.about === "string" ? json.about : "", accelerators };
}

/** Merge per-id partial overrides over the catalog (pure). Unknown ids are an error, not silently ignored. */
export function applyAcceleratorOverrides(catalog: AcceleratorCatalog, overrides: AcceleratorOverrides = {}): AcceleratorCatalog {
  const ids = new Set(catalog.accelerators.map((a) => a.id));
  for (const id of Object.keys(overrides)) {
    if (!ids.has(id)) throw new CatalogError(`override for unknown accelerator "${id}"; known: ${[...ids].join(", ")}`);
  }
  const merged = catalog.accelerators.map((a) => {
    const o = overrides[a.id];
    if (!o) return a;
    const { id: _id, sources: _sources, ...rest } = o as AcceleratorOverride & { id?: unknown; sources?: unknown };
    return { ...a, ...rest, id: a.id, sources: a.sources };
  });
  return parseAcceleratorCatalog({ about: catalog.about, accelerators: merged });
}

/** Look an accelerator up by id; the error lists the known ids. */
export function findAccelerator(catalog: AcceleratorCatalog, id: string): Accelerator {
  const chip = catalog.accelerators.find((a) => a.id === id);
  if (!chip) {
    throw new CatalogError(`unknown chip "${id}"; known: ${catalog.accelerators.map((a) => a.id).join(", ")}`);
  }
  return chip;
}

export const DEFAULT_CATALOG_RELATIVE_PATH = "../shared/data/hardware-catalog.json";

/**
 * Where the catalog file is: the explicit path if given (relative to cwd), else
 * `<cwd>/../shared/data/hardware-catalog.json`, else the same path relative to the project root
 * found from this module's location (src/hardware → ../../).
 */
export function resolveCatalogPath(path?: string): string {
  if (path !== undefined) return isAbsolute(path) ? path : resolve(process.cwd(), path);
  const fromCwd = resolve(process.cwd(), DEFAULT_CATALOG_RELATIVE_PATH);
  if (existsSync(fromCwd)) return fromCwd;
  const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
  return resolve(projectRoot, DEFAULT_CATALOG_RELATIVE_PATH);
}

/** Read, validate and override the accelerator catalog. */
export function loadAcceleratorCatalog(path?: string, overrides: AcceleratorOverrides = {}): AcceleratorCatalog {
  const file = resolveCatalogPath(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CatalogError(`cannot read hardware catalog ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CatalogError(`hardware catalog ${file} is not JSON: ${(e as Error).message}`);
  }
  return applyAcceleratorOverrides(parseAcceleratorCatalog(json), overrides);
}
