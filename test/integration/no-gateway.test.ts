// With no gateway listening the client learns it at once from NATS ("no responders"), not after a timeout.
import { connect } from "nats";
import { expect, it } from "vitest";
import { generate } from "../../src/client/client.ts";
import { startNatsServer } from "../../src/cluster/nats-server.ts";
import { subjectsFor } from "../../src/protocol/index.ts";

it("a generate call with no gateway running fails fast with Unavailable no_gateway", async () => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  try {
    expect(nc.getServer()).toBe(`127.0.0.1:${server.port}`);
    const outcome = await generate(nc, subjectsFor("nobody"), { prompt: "hello", timeoutMs: 20_000 });
    expect(outcome.final._tag).toBe("GenerateFailed");
    if (outcome.final._tag === "GenerateFailed") expect(outcome.final.error).toMatchObject({ code: "Unavailable", reason: "no_gateway" });
    expect(outcome.totalMs).toBeLessThan(2_000);
  } finally {
    await nc.close();
    await server.stop();
  }
});
