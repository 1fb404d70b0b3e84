// CPU / llama.cpp fault classifier: the failures node-llama-cpp and llama.cpp report on the CPU engine.
// Codes match the ones `src/engine/llama-cpp.ts` already raises (allocation_failed, state_load_rejected,
// decode_failed…) so an injected fault and a real one look the same to the supervisor.
//
// A rejected state load is `fatal` with scope `request`: llama.cpp refuses a KV state whose shape does not
// match the context (wrong V transposition, stream count, layer count or cell types, or too large). The
// bytes are wrong, not the device: retrying the same bytes fails the same way, so the request must not
// retry in place and the worker must not be quarantined. The policy turns it into "reject the payload"
// (the request actor re-prefills elsewhere or fails the request typed) and does not count it toward the
// worker's K-in-T quarantine.
import type { DriverFault } from "../engine.ts";
import { classifyWith, type FaultInput, type FaultRule, type VendorTable } from "./rules.ts";

export const CPU_VENDOR = "cpu";

const LLAMA_CPP = "llama.cpp src/llama-context.cpp, llama-kv-cache.cpp (github.com/ggml-org/llama.cpp)";
const GGML = "ggml ggml-backend.cpp / ggml-alloc.c allocation errors (github.com/ggml-org/llama.cpp)";
const NODE_LLAMA = "node-llama-cpp 3.x LlamaContext / LlamaContextSequence errors";
const THIS_REPO = "src/engine/llama-cpp.ts (this repository)";

export const CPU_RULES: ReadonlyArray<FaultRule> = [
  {
    code: "state_load_rejected",
    patterns: [
      /Failed to load state/i,
      /incompatible V transposition/i,
      /n_stream mismatch/i,
      /failed to restore sequence state/i,
      /\bmismatched (layer count|key|value|r|s)\b/i,
      /state file is too large for the current context size/i,
    ],
    meaning: "llama.cpp rejected an imported KV state (shape or type does not match this context). Fatal for the request's payload, not for the device.",
    faultClass: "fatal",
    scope: "request",
    source: `${LLAMA_CPP}; ${NODE_LLAMA}`,
    sample: "state_read_data: incompatible V transposition",
    uncertain: "'n_stream mismatch' comes from upstream llama-kv-cache.cpp state_read and is not present verbatim in the bundled libllama build; the other strings are.",
  },
  {
    code: "context_overflow",
    aliases: ["context_size_exceeded"],
    patterns: [
      /context size exceeded/i,
      /failed to find a memory slot for batch/i,
      /The context size is too small/i,
      /Input is longer than the usable context size/i,
      /input length exceed(s|ed)? the context size/i,
      /No sequences left/i,
    ],
    meaning: "The sequence or batch does not fit the context (KV cells or sequences exhausted).",
    faultClass: "resource",
    scope: "device",
    source: `${LLAMA_CPP}; ${NODE_LLAMA}`,
    sample: "decode: failed to find a memory slot for batch of size 512",
  },
  {
    code: "allocation_failed",
    aliases: ["ENOMEM"],
    patterns: [
      /failed to allocate/i,
      /not enough space in the (buffer|context's memory pool)/i,
      /std::bad_alloc/,
      /Cannot allocate memory/i,
      /\bout of memory\b/i,
    ],
    meaning: "A host (CPU backend) buffer allocation failed: compute buffer, KV cache or output buffer.",
    faultClass: "resource",
    scope: "device",
    source: `${GGML}; ${THIS_REPO}`,
    sample: "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 1073741824",
  },
  {
    code: "ggml_abort",
    aliases: ["GGML_ASSERT", "SIGABRT"],
    patterns: [/GGML_ASSERT\(/, /\bGGML_ABORT\b/, /ggml_abort/i],
    meaning: "llama.cpp hit an internal assertion and aborts the process; the engine driver must restart (its KV is gone).",
    faultClass: "device-reset",
    scope: "device",
    source: GGML,
    sample: "llama-kv-cache.cpp:812: GGML_ASSERT((uint32_t) seq_id < n_stream) failed",
    uncertain: "A GGML_ASSERT can be triggered by one request's input (poison request); the request actor's k-worker rule decides that.",
  },
  {
    code: "model_load_failed",
    patterns: [/failed to load model/i],
    meaning: "The GGUF model could not be loaded (missing, corrupt or unsupported file).",
    faultClass: "fatal",
    scope: "device",
    source: `${LLAMA_CPP}; ${THIS_REPO}`,
    sample: "llama_model_load_from_file_impl: failed to load model",
  },
  {
    code: "backend_unavailable",
    patterns: [/no (usable )?backend|backend .* not available/i],
    meaning: "No usable llama.cpp backend/binary for this machine.",
    faultClass: "fatal",
    scope: "device",
    source: THIS_REPO,
    sample: "no usable backend: the prebuilt llama.cpp binary failed to load",
    uncertain: "Wording is this repository's, not llama.cpp's.",
  },
  {
    code: "kv_transfer_failed",
    aliases: ["ECONNRESET", "ETIMEDOUT", "EPIPE"],
    patterns: [/\b(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE)\b/],
    meaning: "The KV byte transfer between workers broke (TCP KV channel reset or timed out).",
    faultClass: "interconnect",
    scope: "device",
    source: "Node.js net errors on the KV channel (src/transport/tcp-kv-channel.ts)",
    sample: "read ECONNRESET",
  },
  {
    code: "decode_failed",
    patterns: [/llama_decode failed|decode failed/i],
    meaning: "A decode step failed without a more specific cause; retried in place.",
    faultClass: "transient",
    scope: "device",
    source: THIS_REPO,
    sample: "llama_decode failed: ret = -1",
  },
  {
    code: "state_save_failed",
    patterns: [/failed to (save|write) (sequence )?state/i],
    meaning: "Serialising a sequence's KV state failed (e.g. temporary file I/O); retried in place.",
    faultClass: "transient",
    scope: "device",
    source: THIS_REPO,
    sample: "failed to save sequence state to /tmp/tandem-kv-1234.bin",
  },
  {
    code: "kv_erase_failed",
    patterns: [/failed to (erase|clear|remove) (the )?(kv|tokens)/i],
    meaning: "Erasing a sequence's KV cells failed; retried in place.",
    faultClass: "transient",
    scope: "device",
    source: THIS_REPO,
    sample: "failed to erase kv cells of sequence 3",
  },
];

export const CPU_TABLE: VendorTable = { vendor: CPU_VENDOR, rules: CPU_RULES };

/** llama.cpp has no numeric enum here: a string is a code name (`state_load_rejected`) or a message. */
export const classifyCpu = (input: FaultInput): DriverFault => classifyWith(CPU_TABLE, input);
