// Prefix events on NATS: prefill workers announce each prompt they start and finish (with its text block chain),
// and every gateway keeps its own copy of the prefix index from them. A copy that missed events (a gateway that
// started later, a dropped message) only routes less well: the engine decides what it reuses, token by token.
import { Effect, Result } from "effect";
import { decodeMessageResult, PrefixEvent, type Subjects } from "../protocol/index.ts";
import { PrefixIndex } from "../kv/prefix-index.ts";
import { promptBlockHashes } from "../kv/prompt-prefix.ts";
import { subscribeScoped, tell } from "./nats-client.ts";

const decodeEvent = decodeMessageResult(PrefixEvent);

export interface PrefixRouting {
  /** Leading text blocks of `prompt` each prefill worker holds, by worker id. */
  readonly cachedBlocks: (prompt: string) => ReadonlyMap<string, number>;
}

/** Follows events.prefix into a prefix index for as long as the scope lives. */
export const followPrefixIndex = (subjects: Subjects) =>
  Effect.gen(function* () {
    const index = new PrefixIndex();
    yield* subscribeScoped(subjects.events("prefix"), (msg) => {
      const decoded = decodeEvent(msg.data);
      if (Result.isFailure(decoded)) return;
      const event = decoded.success;
      if (event.phase === "started") index.started(event.workerId, event.pid, event.capacity, event.request, event.chain ?? []);
      else index.finished(event.workerId, event.request);
    });
    const routing: PrefixRouting = { cachedBlocks: (prompt) => index.cachedBlocks(promptBlockHashes(prompt)) };
    return routing;
  });

/** A prefill worker's announcements: `started` before a prompt runs, `finished` once its sequence is free. */
export const prefixAnnouncer = (subjects: Subjects, workerId: string, capacity: number) => {
  const announce = (request: string, phase: "started" | "finished", chain?: ReadonlyArray<number>) =>
    tell(subjects.events("prefix"), PrefixEvent, {
      _tag: "PrefixEvent",
      workerId,
      pid: process.pid,
      capacity,
      request,
      phase,
      ...(chain === undefined ? {} : { chain }),
    }).pipe(Effect.ignore);
  return {
    started: (request: string, prompt: string) => announce(request, "started", promptBlockHashes(prompt)),
    finished: (request: string) => announce(request, "finished"),
  };
};
