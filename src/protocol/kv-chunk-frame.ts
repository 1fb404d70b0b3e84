// KV chunks travel as raw bytes with their fields in NATS headers, not inside a msgpack envelope: the bulk
// path then copies each byte only where NATS itself does, and never allocates a second buffer per chunk.
// The fields are still validated against the KvChunk schema on arrival.
import { Result, Schema } from "effect";
import { headers, type Msg, type MsgHdrs } from "nats";
import { invalidRequest, type TandemError } from "./errors.ts";
import { CURRENT_VERSION, KvChunk, SUPPORTED_VERSIONS } from "./messages.ts";

const TAG = "Tandem-Msg";
const VERSION = "Tandem-V";
const LAYER_CHECKSUM = "Kv-Layer-Checksum";

export const kvChunkHeaders = (transferId: string, index: number, checksum: number, layerChecksum?: number): MsgHdrs => {
  const h = headers();
  h.set(TAG, "KvChunk");
  h.set(VERSION, String(CURRENT_VERSION));
  h.set("Kv-Transfer", transferId);
  h.set("Kv-Index", String(index));
  h.set("Kv-Checksum", String(checksum));
  if (layerChecksum !== undefined) h.set(LAYER_CHECKSUM, String(layerChecksum));
  return h;
};

export const isKvChunkFrame = (msg: Msg) => msg.headers?.get(TAG) === "KvChunk";

const decodeChunk = Schema.decodeUnknownResult(KvChunk);

export const decodeKvChunkFrame = (msg: Msg): Result.Result<KvChunk, TandemError> => {
  const h = msg.headers!;
  const v = Number(h.get(VERSION));
  if (!SUPPORTED_VERSIONS.includes(v)) {
    return Result.fail(invalidRequest("unsupported_version", `KvChunk frame version ${h.get(VERSION)} is not supported`));
  }
  return Result.mapError(
    decodeChunk({
      _tag: "KvChunk",
      v,
      transferId: h.get("Kv-Transfer"),
      index: Number(h.get("Kv-Index")),
      bytes: msg.data,
      checksum: Number(h.get("Kv-Checksum")),
      ...(h.has(LAYER_CHECKSUM) ? { layerChecksum: Number(h.get(LAYER_CHECKSUM)) } : {}),
    }),
    (issue) => invalidRequest("invalid_field", `KvChunk frame does not match its schema: ${issue.message}`),
  );
};
