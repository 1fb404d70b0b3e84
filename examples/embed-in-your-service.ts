// Embedding Tandem actors in your own service: one process that runs a KV broker, a gateway, a prefill and
// a decode worker as Effect programs inside its own Scope, then calls itself through NATS like any client.
// Run: npx tsx examples/embed-in-your-service.ts   (or: npx deno run -A examples/embed-in-your-service.ts)
// Uses NATS_URL when set, otherwise starts a private nats-server.
import { Effect, Layer } from "effect";
import { connect } from "nats";
import {
  GATEWAY_DEFAULTS,
  generate,
  Log,
  makeLlamaCppEngine,
  NatsClient,
  resolveModelPath,
  runDecodeWorker,
  runGateway,
  runKvBroker,
  runPrefillWorker,
  startNatsServer,
  subjectsFor,
} from "../src/index.ts";

const nats = process.env.NATS_URL ? undefined : await startNatsServer();
const natsUrl = process.env.NATS_URL ?? nats!.url;
const subjects = subjectsFor("embedded");
const modelPath = resolveModelPath(undefined);

// Your service's actors: each is an Effect that registers its subscriptions in the surrounding Scope.
const actors = Effect.gen(function* () {
  yield* runKvBroker({ subjects, sweepMs: 100, leaseTtlMs: 10_000 });
  yield* runGateway({ ...GATEWAY_DEFAULTS, subjects });
  // Prefill and decode need engines with the same sequence count (llama.cpp state only loads into one).
  const prefillEngine = yield* makeLlamaCppEngine({ modelPath });
  yield* runPrefillWorker({ id: "my-prefill", subjects, heartbeatMs: 1_000, stallTimeoutMs: 2_000, tcpMinBytes: 1024 * 1024 }, prefillEngine);
  const decodeEngine = yield* makeLlamaCppEngine({ modelPath });
  yield* runDecodeWorker({ id: "my-decode", subjects, heartbeatMs: 1_000, creditWindowBytes: 32 * 1024 * 1024, maxPendingTransfers: 64, kvWaitTimeoutMs: 10_000 }, decodeEngine);
});

// Call the embedded cluster like any NATS client would.
const callIt = Effect.promise(async () => {
  const nc = await connect({ servers: natsUrl });
  const outcome = await generate(nc, subjects, { prompt: "Once upon a time", maxTokens: 24 }, {
    onChunk: (chunk) => process.stdout.write(chunk.text),
  });
  await nc.close();
  process.stdout.write("\n");
  return outcome;
});

const program = Effect.scoped(actors.pipe(Effect.andThen(callIt))).pipe(
  Effect.provide(Layer.mergeAll(NatsClient.layer({ servers: natsUrl, name: "my-service" }), Log.layer({ service: "my-service" }))),
);

const outcome = await Effect.runPromise(program);
await nats?.stop();
if (outcome.final._tag === "GenerateFailed") {
  console.error(`failed: ${outcome.final.error.code} ${outcome.final.error.reason}: ${outcome.final.error.message}`);
  process.exit(1);
}
console.log(`done: ${outcome.final.usage.completionTokens} tokens, prefill pid ${outcome.final.route.prefillPid}, decode pid ${outcome.final.route.decodePid}`);
process.exit(0);
