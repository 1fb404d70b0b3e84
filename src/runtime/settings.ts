// Every tunable in one place, read from the environment (so `tandem up` can hand the same settings to the
// processes it starts, and compose.yaml can set them per service).
import { DEFAULT_EMULATED_MODEL, type EmulationSpec } from "../engine/emulated/profile.ts";
import { DEFAULT_CHUNK_BYTES } from "../kv/chunking.ts";
import { DEFAULT_PREFIX_SPILL_MAX_BYTES } from "../transport/prefix-spill-store.ts";

const int = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
};

/** A non-negative number from the environment (e.g. a time scale), or `fallback` when unset. */
const number = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return value;
};

/** What an emulated engine pretends to be; present when TANDEM_EMULATE_CHIP is set. */
const emulation = (): EmulationSpec | undefined => {
  const chip = process.env.TANDEM_EMULATE_CHIP;
  if (chip === undefined || chip === "") return undefined;
  const dtype = process.env.TANDEM_EMULATE_DTYPE || "bf16";
  if (dtype !== "bf16" && dtype !== "fp8") throw new Error(`TANDEM_EMULATE_DTYPE must be bf16 or fp8, got "${dtype}"`);
  return {
    chip,
    model: process.env.TANDEM_EMULATE_MODEL || DEFAULT_EMULATED_MODEL,
    tp: int("TANDEM_EMULATE_TP", 1),
    dtype,
    kvDtype: process.env.TANDEM_EMULATE_KV_DTYPE || "auto",
    timeScale: number("TANDEM_EMULATE_TIME_SCALE", 1),
  };
};

export interface Settings {
  readonly natsUrl: string | undefined;
  readonly cluster: string;
  readonly heartbeatMs: number;
  readonly kvChunkBytes: number;
  readonly sequences: number;
  readonly contextSize: number;
  readonly threads: number;
  readonly maxDecodeBatch: number;
  readonly flashAttention: boolean;
  readonly prefixReuse: boolean;
  /** Bytes of evicted prefixes the spill tier keeps before evicting the oldest. */
  readonly prefixSpillMaxBytes: number;
  /** Host decode workers listen on for direct TCP KV, or undefined for NATS only. */
  readonly kvTcpHost: string | undefined;
  readonly kvTcpMinBytes: number;
  readonly leaseTtlMs: number;
  readonly stallTimeoutMs: number;
  readonly maxTokensLimit: number;
  readonly defaultTimeoutMs: number;
  /** Wrap the engine in an emulated vendor engine; undefined runs the real engine as it is. */
  readonly emulation: EmulationSpec | undefined;
}

export const readSettings = (): Settings => ({
  natsUrl: process.env.NATS_URL || undefined,
  cluster: process.env.TANDEM_CLUSTER || "local",
  heartbeatMs: int("TANDEM_HEARTBEAT_MS", 1_000),
  kvChunkBytes: int("TANDEM_KV_CHUNK_BYTES", DEFAULT_CHUNK_BYTES),
  sequences: int("TANDEM_SEQUENCES", 8),
  contextSize: int("TANDEM_CONTEXT_SIZE", 512),
  threads: int("TANDEM_THREADS", 1),
  maxDecodeBatch: int("TANDEM_DECODE_BATCH", 3),
  flashAttention: (process.env.TANDEM_FLASH_ATTENTION ?? "1") !== "0",
  prefixReuse: (process.env.TANDEM_PREFIX_REUSE ?? "1") !== "0",
  prefixSpillMaxBytes: int("TANDEM_PREFIX_SPILL_MAX_BYTES", DEFAULT_PREFIX_SPILL_MAX_BYTES),
  kvTcpHost: process.env.TANDEM_KV_TCP === "0" ? undefined : (process.env.TANDEM_KV_TCP_HOST || "127.0.0.1"),
  kvTcpMinBytes: process.env.TANDEM_KV_TCP_MIN_BYTES === "0" ? 0 : int("TANDEM_KV_TCP_MIN_BYTES", 1024 * 1024),
  leaseTtlMs: int("TANDEM_LEASE_TTL_MS", 10_000),
  stallTimeoutMs: int("TANDEM_KV_STALL_MS", 2_000),
  maxTokensLimit: int("TANDEM_MAX_TOKENS_LIMIT", 256),
  defaultTimeoutMs: int("TANDEM_TIMEOUT_MS", 30_000),
  emulation: emulation(),
});

/** The environment variables above, for documentation and `--help`. */
export const SETTINGS_HELP = `
  NATS_URL                 NATS server to use (default: start a private one)
  TANDEM_CLUSTER           cluster name in subjects (default local)
  TANDEM_MODEL             GGUF model path (default ./models/, then ../shared/models/)
  TANDEM_HEARTBEAT_MS      membership heartbeat (default 1000)
  TANDEM_KV_CHUNK_BYTES    KV chunk size on NATS, capped under max_payload, whole 64 KiB blocks (default 1048576)
  TANDEM_SEQUENCES         sequences per engine context (default 8)
  TANDEM_CONTEXT_SIZE      tokens per sequence (default 512)
  TANDEM_THREADS           CPU threads per engine (default 1)
  TANDEM_DECODE_BATCH      most sequences per decode step (default 3: wider changes
                           llama.cpp's CPU kernel and greedy output may drift)
  TANDEM_FLASH_ATTENTION   1 or 0 (default 1); changes the KV layout, translated on transfer
  TANDEM_PREFIX_REUSE      1 or 0 (default 1): prefill workers start prompts from cached prefixes
  TANDEM_PREFIX_SPILL_MAX_BYTES  evicted prefixes kept in the Object Store before the oldest go
                           (default 1073741824)
  TANDEM_KV_TCP            1 or 0 (default 1): decode workers take large KV over a direct TCP stream
  TANDEM_KV_TCP_HOST       address decode workers listen on and advertise (default 127.0.0.1)
  TANDEM_KV_TCP_MIN_BYTES  KV caches at least this large go over TCP (default 1048576)
  TANDEM_LEASE_TTL_MS      KV transfer lease TTL (default 10000)
  TANDEM_KV_STALL_MS       sender gives up without credit after (default 2000)
  TANDEM_MAX_TOKENS_LIMIT  largest max_tokens accepted (default 256)
  TANDEM_TIMEOUT_MS        default request deadline (default 30000)
  TANDEM_EMULATE_CHIP      emulate this accelerator (catalog id, e.g. nvidia-b200): step timing from the
                           performance model, the vendor's native KV format on the wire (default: none)
  TANDEM_EMULATE_MODEL     model whose timing is emulated (default llama-3-8b)
  TANDEM_EMULATE_TP        tensor parallelism of the emulated deployment (default 1)
  TANDEM_EMULATE_DTYPE     bf16 or fp8 weights of the emulated deployment (default bf16)
  TANDEM_EMULATE_KV_DTYPE  KV dtype on the wire: auto (the real engine's, exact), bf16, fp8 (the chip's
                           flavour) or a dtype name; anything but auto is lossy (default auto)
  TANDEM_EMULATE_TIME_SCALE  multiplies emulated delays; 0.01 runs 100× faster, 0 not at all (default 1)
  TANDEM_FAULT_RATES       inject driver faults: per-call rates by class, e.g. transient=0.001,fatal=0.0001
  TANDEM_FAULT_SEED        seed of those draws (default 1; the same seed replays the same faults)
  TANDEM_FAULT_SCRIPT      inject exactly these faults: <class>@<driver call>, e.g. device-reset@3
  TANDEM_FAULT             test hook that kills the process at a point (src/runtime/process-faults.ts)
  TANDEM_FAULT_ONLY        apply TANDEM_FAULT to this worker id only
  TANDEM_LOG_LEVEL         pino level (default info)`;
