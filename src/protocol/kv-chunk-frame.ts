// KV chunks travel as raw bytes with their fields in NATS headers, not inside a msgpack envelope: a receiver
// reads the headers first and lands the payload straight where it belongs (see nats-bulk-reader.ts), never
// allocating a buffer per chunk. The fields are still validated against the KvChunk schema on arrival.
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

/** Reads one header of a frame (undefined when absent): a bulk reader's map or {@link headerLookupOf} a nats.js message. */
export type HeaderLookup = (name: string) => string | undefined;

export const headerLookupOf = (msg: Msg): HeaderLookup => (name) => (msg.headers?.has(name) ? msg.headers.get(name) : undefined);

export const isKvChunkFrame = (header: HeaderLookup) => header(TAG) === "KvChunk";

const decodeChunk = Schema.decodeUnknownResult(KvChunk);

/** A KvChunk frame's fields and its payload `bytes`, validated against the KvChunk schema. */
export const decodeKvChunkFrame = (header: HeaderLookup, bytes: Uint8Array): Result.Result<KvChunk, TandemError> => {
  const v = Number(header(VERSION));
  if (!SUPPORTED_VERSIONS.includes(v)) {
    return Result.fail(invalidRequest("unsupported_version", `KvChunk frame version ${header(VERSION)} is not supported`));
  }
  const layerChecksum = header(LAYER_CHECKSUM);
  return Result.mapError(
    decodeChunk({
      _tag: "KvChunk",
      v,
      transferId: header("Kv-Transfer"),
      index: Number(header("Kv-Index")),
      bytes,
      checksum: Number(header("Kv-Checksum")),
      ...(layerChecksum !== undefined ? { layerChecksum: Number(layerChecksum) } : {}),
    }),
    (issue) => invalidRequest("invalid_field", `KvChunk frame does not match its schema: ${issue.message}`),
  );
};

/** A KvChunk frame's fields from its headers alone, before its payload has arrived (to say where it goes). */
export const decodeKvChunkHeaders = (header: HeaderLookup): Result.Result<Omit<KvChunk, "bytes">, TandemError> =>
  Result.map(decodeKvChunkFrame(header, NO_BYTES), ({ bytes: _, ...fields }) => fields);

const NO_BYTES = new Uint8Array(0);
