// msgpack on the wire, Effect Schema at the boundary. Decoding checks the envelope (`_tag`, `v`) first so
// an unknown version gets its own clear reason rather than a generic schema failure. The core returns a
// Result so NATS callbacks can decode synchronously; `decodeMessage` lifts it into Effect.
import { decode as msgpackDecode, Encoder } from "@msgpack/msgpack";
import { Effect, Result, Schema } from "effect";
import { invalidRequest, type TandemError } from "./errors.ts";
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from "./messages.ts";

// deno-lint-ignore no-explicit-any
export type AnySchema = Schema.Codec<any, any, never, never>;

// One encoder for the process: its buffer stays grown after the first large message (a KV chunk), where a
// fresh encoder per call would re-grow from 2 KiB by doubling, copying each time. `encode` returns a copy, so
// reuse is safe (encoding is synchronous).
const encoder = new Encoder();

export const encodeMessage = <S extends AnySchema>(schema: S, value: Omit<S["Type"], "v">): Uint8Array => {
  const encoded = Schema.encodeSync(schema)({ ...value, v: CURRENT_VERSION } as S["Type"]);
  return encoder.encode(encoded);
};

const readEnvelope = (bytes: Uint8Array): Result.Result<Record<string, unknown>, TandemError> => {
  let raw: unknown;
  try {
    raw = msgpackDecode(bytes);
  } catch (cause) {
    return Result.fail(invalidRequest("malformed_message", `the message is not valid msgpack: ${String(cause)}`));
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || raw instanceof Uint8Array) {
    return Result.fail(invalidRequest("malformed_message", "the message must be a msgpack map"));
  }
  const record = raw as Record<string, unknown>;
  if (typeof record._tag !== "string") {
    return Result.fail(invalidRequest("malformed_message", "the message has no string `_tag` field"));
  }
  if (typeof record.v !== "number" || !SUPPORTED_VERSIONS.includes(record.v)) {
    return Result.fail(
      invalidRequest(
        "unsupported_version",
        `schema version ${JSON.stringify(record.v)} of ${record._tag} is not supported; this server accepts v${
          SUPPORTED_VERSIONS.join(", v")
        }`,
      ),
    );
  }
  return Result.succeed(record);
};

export const decodeMessageResult = <S extends AnySchema>(schema: S) => {
  const decodeUnknown = Schema.decodeUnknownResult(schema);
  return (bytes: Uint8Array): Result.Result<S["Type"], TandemError> =>
    Result.flatMap(readEnvelope(bytes), (record) =>
      Result.mapError(
        decodeUnknown(record),
        (issue) => invalidRequest("invalid_field", `${String(record._tag)} does not match its schema: ${issue.message}`),
      ));
};

export const decodeMessage = <S extends AnySchema>(schema: S) => {
  const decode = decodeMessageResult(schema);
  return (bytes: Uint8Array): Effect.Effect<S["Type"], TandemError> => Effect.fromResult(decode(bytes));
};
