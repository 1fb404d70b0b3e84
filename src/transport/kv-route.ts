// Which channel a KV transfer takes, and what happens when it breaks: large caches go over the receiver's direct
// TCP listener when it has one; if that connection fails (refused, reset, stalled) the transfer is re-routed
// over NATS, where the receiver listens for the whole lease anyway. A NATS failure is final for this attempt.
import { Effect } from "effect";
import type { TandemError } from "../protocol/index.ts";
import type { KvPayload } from "./kv-transfer.ts";
import type { NatsClient } from "./nats-client.ts";
import { sendKv, type SendKvOptions } from "./nats-kv-channel.ts";
import { sendKvTcp } from "./tcp-kv-channel.ts";

export interface KvRoute {
  /** The receiver's TCP listener, when this transfer should use it. */
  readonly tcp?: { readonly host: string; readonly port: number; readonly chunkBytes: number } | undefined;
  readonly nats: Omit<SendKvOptions, "payload">;
  /** Builds the payload (a stream, consumed once per send). */
  readonly payload: Effect.Effect<KvPayload, TandemError>;
  /** Told when TCP failed and the transfer moves to NATS. */
  readonly onReroute: (error: TandemError) => Effect.Effect<void>;
}

export const sendKvRouted = (route: KvRoute): Effect.Effect<void, TandemError, NatsClient> => {
  const overNats = route.payload.pipe(Effect.flatMap((payload) => sendKv({ ...route.nats, payload })));
  const { tcp } = route;
  if (tcp === undefined) return overNats;
  return route.payload.pipe(
    Effect.flatMap((payload) =>
      sendKvTcp({
        host: tcp.host,
        port: tcp.port,
        chunkBytes: tcp.chunkBytes,
        transferId: route.nats.transferId,
        payload,
        stallTimeoutMs: route.nats.stallTimeoutMs,
      })
    ),
    Effect.catch((error: TandemError) => route.onReroute(error).pipe(Effect.andThen(overNats))),
  );
};
