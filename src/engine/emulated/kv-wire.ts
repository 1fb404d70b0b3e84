// What a worker sends for its engine's KV and what it imports, whatever the two engines' formats: two
// llama.cpp states move layer by layer (src/transport/llama-kv-layers.ts: each layer translated as it
// arrives); a vendor-native envelope is self-describing and moves whole, and KV crossing between the two
// kinds, or between two vendors' layouts, is translated once it is complete (./kv-translation.ts). A pair no
// translation joins is refused before any byte is read, naming both formats.
import { Effect } from "effect";
import { KvFormatError } from "../../kv/kv-format-error.ts";
import { parseFormatName } from "../../kv/llama-format.ts";
import { type TandemError, unavailable } from "../../protocol/index.ts";
import { type IncomingKv, type KvPayload, receiveWhole, wholeKv } from "../../transport/kv-transfer.ts";
import { llamaStatePayload, receiveLlamaState } from "../../transport/llama-kv-layers.ts";
import { kvMoveRefusal, translateKv } from "./kv-translation.ts";

const isLlamaState = (format: string) => parseFormatName(format) !== undefined;

/** The payload that sends `bytes`, an engine's export in `format`. */
export const kvPayloadOf = (bytes: Uint8Array, format: string): Effect.Effect<KvPayload, TandemError> =>
  isLlamaState(format) ? llamaStatePayload(bytes, format) : Effect.succeed(wholeKv(bytes, format));

const refused = (from: string, to: string, reason: string) => unavailable("kv_format_refused", new KvFormatError(from, to, reason).message);

/** The incoming KV in format `to` (the receiving engine's), or `kv_format_refused` naming both formats. */
export const receiveKvAs = (incoming: IncomingKv, to: string): Effect.Effect<Uint8Array, TandemError> => {
  const from = incoming.format;
  if (isLlamaState(from) && isLlamaState(to)) return receiveLlamaState(incoming, to);
  const refusal = kvMoveRefusal(from, to);
  if (refusal !== undefined) return Effect.fail(refused(from, to, refusal));
  const whole = isLlamaState(from) ? receiveLlamaState(incoming, from) : Effect.map(receiveWhole(incoming), (received) => received.bytes);
  return Effect.flatMap(whole, (bytes) =>
    Effect.try({
      try: () => translateKv(bytes, from, to),
      catch: (error) => unavailable("kv_format_refused", error instanceof Error ? error.message : String(error)),
    }));
};
