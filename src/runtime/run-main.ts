// The process edge: runs a program, interrupts it on SIGINT/SIGTERM so every Scope closes (subscriptions,
// membership records, engine contexts), and exits non-zero on failure so an orchestrator restarts us.
import { Cause, Effect, Exit } from "effect";

export const runMain = <E>(program: Effect.Effect<void, E>): void => {
  const fiber = Effect.runFork(program);
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals > 1) process.exit(130);
    fiber.interruptUnsafe();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  fiber.addObserver((exit) => {
    if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
      process.stderr.write(`${Cause.pretty(exit.cause)}\n`);
      process.exit(1);
    }
    process.exit(0);
  });
};
