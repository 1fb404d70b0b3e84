// Process entry points for each actor kind. `tandem up` starts one OS process per role; compose.yaml runs
// the same commands in containers.
import { Effect, Layer, type Scope } from "effect";
import { runDecodeWorker } from "../../actors/decode/decode-worker.ts";
import { GATEWAY_DEFAULTS, runGateway } from "../../actors/request/gateway.ts";
import { runKvBroker } from "../../actors/kv-broker/kv-broker.ts";
import { runPrefillWorker } from "../../actors/prefill/prefill-worker.ts";
import { runMonolithicServer } from "../../actors/request/monolithic-server.ts";
import { makeEmulatedEngine } from "../engine/emulated/emulated-engine.ts";
import { ggufKvHeads } from "../engine/emulated/model-kv-heads.ts";
import { profileLabel, resolveProfile } from "../engine/emulated/profile.ts";
import { engineOptions, makeLlamaCppEngine } from "../engine/llama-cpp.ts";
import { loadAcceleratorCatalog } from "../hardware/accelerator-catalog.ts";
import { resolveModelPath } from "../engine/model-resolution.ts";
import { subjectsFor } from "../protocol/index.ts";
import { Log } from "../runtime/log.ts";
import { runMain } from "../runtime/run-main.ts";
import { processFaultFor } from "../runtime/process-faults.ts";
import { superviseWorkerEngine } from "../../actors/worker-driver.ts";
import { readSettings } from "../runtime/settings.ts";
import { openPrefixSpill, type PrefixSpillStore } from "../transport/prefix-spill-store.ts";
import { NatsClient } from "../transport/nats-client.ts";
import { DEFAULT_WINDOW_BYTES } from "../transport/nats-kv-channel.ts";

export type Role = "gateway" | "broker" | "prefill" | "decode" | "monolithic";

/** Exits when the process that started us is gone, so a killed `tandem up` leaves nothing behind. */
const exitWithParent = () => {
  const parent = Number(process.env.TANDEM_PARENT_PID);
  if (!parent) return;
  setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      process.exit(0);
    }
  }, 1_000).unref();
};

export const runRole = (role: Role, id: string, modelFlag: string | undefined): void => {
  const settings = readSettings();
  if (!settings.natsUrl) throw new Error(`tandem ${role} needs NATS_URL`);
  const subjects = subjectsFor(settings.cluster);
  const fault = processFaultFor(id);
  // TANDEM_EMULATE_CHIP makes this an emulated vendor engine; an unknown chip or model fails here, listing the valid ids.
  const profile = settings.emulation === undefined ? undefined : resolveProfile(loadAcceleratorCatalog(), settings.emulation, settings.contextSize);
  exitWithParent();
  const layers = Layer.mergeAll(
    NatsClient.layer({ servers: settings.natsUrl, name: `tandem-${role}-${id}` }),
    Log.layer({ role, id, cluster: settings.cluster, ...(profile === undefined ? {} : { emulated: profileLabel(profile) }) }),
  );
  const modelPath = role === "prefill" || role === "decode" || role === "monolithic" ? resolveModelPath(modelFlag) : "";
  // Prefill engines with prefix reuse spill evicted prefixes to the cluster's Object Store, and restore from it.
  // Without JetStream's Object Store the engine still runs, only without the spill tier.
  const prefixSpill: Effect.Effect<PrefixSpillStore | undefined, never, NatsClient | Log | Scope.Scope> = role === "prefill" && settings.prefixReuse
    ? openPrefixSpill(subjects.prefixSpillBucket, { maxBytes: settings.prefixSpillMaxBytes }).pipe(
      Effect.catch((error) =>
        Effect.gen(function* () {
          const log = yield* Log;
          log.warn({ error: error.body }, "prefix spill tier unavailable; prefixes evicted here are recomputed");
          return undefined;
        })
      ),
    )
    : Effect.succeed(undefined);
  const realEngine = prefixSpill.pipe(Effect.flatMap((spill) =>
    makeLlamaCppEngine({
      ...engineOptions(modelPath, settings),
      ...(spill === undefined ? {} : { prefixSpill: spill }),
      // Prefill engines never decode: they keep prefixes (erasing a reused tail never waits on a batch) and
      // hand each prompt to llama.cpp at once (there is no batch to wait for).
      prefixReuse: role === "prefill" && settings.prefixReuse,
      immediateDispatch: role === "prefill",
    })
  ));
  const driver = profile === undefined
    ? realEngine
    : Effect.all([realEngine, ggufKvHeads(modelPath)]).pipe(Effect.flatMap(([real, kvHeads]) => makeEmulatedEngine(real, { profile, kvHeads })));
  const supervised = superviseWorkerEngine(id, subjects, driver);
  const engine = supervised.pipe(Effect.map((s) => s.engine));
  const actor = (() => {
    switch (role) {
      case "gateway":
        return runGateway({
          ...GATEWAY_DEFAULTS,
          subjects,
          heartbeatMs: settings.heartbeatMs,
          maxTokensLimit: settings.maxTokensLimit,
          defaultTimeoutMs: settings.defaultTimeoutMs,
          leaseTtlMs: settings.leaseTtlMs,
        });
      case "broker":
        return runKvBroker({ subjects, chunkBytes: settings.kvChunkBytes, sweepMs: 100, leaseTtlMs: settings.leaseTtlMs });
      case "prefill":
        return supervised.pipe(
          Effect.flatMap((s) =>
            runPrefillWorker(
              {
                id,
                subjects,
                heartbeatMs: settings.heartbeatMs,
                stallTimeoutMs: settings.stallTimeoutMs,
                tcpMinBytes: settings.kvTcpMinBytes,
                fault,
                driverHealth: s.health,
              },
              s.engine,
            )
          ),
        );
      case "monolithic":
        return engine.pipe(
          Effect.flatMap((e) =>
            runMonolithicServer(
              { ...GATEWAY_DEFAULTS, id, subjects, maxTokensLimit: settings.maxTokensLimit, defaultTimeoutMs: settings.defaultTimeoutMs },
              e,
            )
          ),
        );
      case "decode":
        return supervised.pipe(
          Effect.flatMap((s) =>
            runDecodeWorker(
              {
                id,
                subjects,
                heartbeatMs: settings.heartbeatMs,
                creditWindowBytes: DEFAULT_WINDOW_BYTES,
                maxPendingTransfers: 64,
                kvWaitTimeoutMs: settings.leaseTtlMs,
                ...(settings.kvTcpHost === undefined ? {} : { kvTcpHost: settings.kvTcpHost }),
                fault,
                driverHealth: s.health,
              },
              s.engine,
            )
          ),
        );
    }
  })();
  runMain(Effect.scoped(actor.pipe(Effect.andThen(Effect.never))).pipe(Effect.provide(layers)));
};
