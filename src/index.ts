// Tandem's public API for embedding: the actors, the engine, the NATS client service and the generate client.
export { runDecodeWorker, type DecodeWorkerConfig } from "../actors/decode/decode-worker.ts";
export { runKvBroker, type KvBrokerConfig } from "../actors/kv-broker/kv-broker.ts";
export { runPrefillWorker, type PrefillWorkerConfig } from "../actors/prefill/prefill-worker.ts";
export { GATEWAY_DEFAULTS, type GatewayConfig, runGateway } from "../actors/request/gateway.ts";
export { generate, type GenerateOutcome } from "./client/client.ts";
export { startNatsServer } from "./cluster/nats-server.ts";
export type { Engine, EngineInfo } from "./engine/engine.ts";
export { makeLlamaCppEngine } from "./engine/llama-cpp.ts";
export { resolveModelPath } from "./engine/model-resolution.ts";
export * from "./protocol/index.ts";
export { Log } from "./runtime/log.ts";
export { NatsClient } from "./transport/nats-client.ts";
