// The actor kernel: an actor is a NATS micro service (so `$SRV.PING/INFO/STATS` discover it) whose endpoints
// feed one bounded mailbox each, drained by a fixed number of fibers that live in the actor's Scope. A full
// mailbox answers `Overloaded` at once instead of queueing without bound.
import { Cause, Effect, Queue, Scope } from "effect";
import type { Msg, Service } from "nats";
import { internal, overloaded, type TandemError } from "../protocol/index.ts";
import { NatsClient, replyFailure } from "../transport/nats-client.ts";
import { Log } from "../runtime/log.ts";
import { runtimeName } from "../runtime/runtime-name.ts";

export interface ActorOptions {
  /** Micro-service name (`$SRV.PING.<name>`), e.g. `tandem-prefill`. */
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly metadata: Record<string, string>;
}

export interface MailboxOptions<R> {
  /** Endpoint name shown in `$SRV.INFO`. */
  readonly endpoint: string;
  readonly subject: string;
  /** Queue group for subjects several actors share; omitted, the micro-service default group is used. */
  readonly queue?: string;
  readonly capacity: number;
  /** How many messages are handled at once. */
  readonly concurrency: number;
  /** Handles one message; failures must already be turned into replies (defects are logged). */
  /** How to answer a message with an error (full mailbox, handler defect); defaults to a `Failure` reply. */
  readonly refuse?: (msg: Msg, error: TandemError) => void;
  readonly handle: (msg: Msg) => Effect.Effect<void, never, R>;
}

export interface Actor {
  readonly service: Service;
  readonly mailbox: <R>(options: MailboxOptions<R>) => Effect.Effect<void, never, Scope.Scope | R>;
}

export const makeActor = (options: ActorOptions): Effect.Effect<Actor, never, NatsClient | Scope.Scope | Log> =>
  Effect.gen(function* () {
    const { connection } = yield* NatsClient;
    const log = yield* Log;
    const service = yield* Effect.acquireRelease(
      Effect.promise(() =>
        connection.services.add({
          name: options.name,
          version: options.version,
          description: options.description,
          metadata: { ...options.metadata, runtime: runtimeName() },
        })
      ),
      (svc) => Effect.promise(() => svc.stop().then(() => undefined, () => undefined)),
    );

    const mailbox = <R>(mb: MailboxOptions<R>) =>
      Effect.gen(function* () {
        const queue = yield* Effect.acquireRelease(Queue.bounded<Msg>(mb.capacity), (q) => Queue.shutdown(q));
        service.addEndpoint(mb.endpoint, {
          subject: mb.subject,
          ...(mb.queue === undefined ? {} : { queue: mb.queue }),
          handler: (_err, msg) => {
            if (!Queue.offerUnsafe(queue, msg)) {
              (mb.refuse ?? replyFailure)(msg, overloaded("mailbox_full", `${options.name} ${mb.endpoint} mailbox is full (${mb.capacity})`));
            }
          },
        });
        const drain = Effect.forever(
          Queue.take(queue).pipe(
            Effect.flatMap((msg) =>
              mb.handle(msg).pipe(
                Effect.catchCause((cause) =>
                  Cause.hasInterruptsOnly(cause)
                    ? Effect.failCause(cause)
                    : Effect.sync(() => {
                      log.error({ endpoint: mb.endpoint, cause: Cause.pretty(cause) }, "handler defect");
                      (mb.refuse ?? replyFailure)(msg, internal("handler_defect", `${options.name} ${mb.endpoint} failed unexpectedly`));
                    })
                ),
              )
            ),
          ),
        );
        for (let i = 0; i < mb.concurrency; i++) yield* Effect.forkScoped(drain);
      });

    return { service, mailbox };
  });
