// Structured logs through pino, provided as a service so every actor logs with its own bindings.
import { Context, Layer } from "effect";
import pino, { type Logger } from "pino";

export class Log extends Context.Service<Log, Logger>()("tandem/runtime/Log") {
  static readonly layer = (bindings: Record<string, unknown>) =>
    Layer.succeed(
      Log,
      pino({ level: process.env.TANDEM_LOG_LEVEL ?? "info", base: { pid: process.pid, ...bindings } }, pino.destination(2)),
    );
}
