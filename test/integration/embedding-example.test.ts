// The embedding example in examples/ is runnable documentation: run it as a real process and check it
// generated through its embedded actors.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { runtimeCommand } from "../../src/cluster/local-cluster.ts";

it("examples/embed-in-your-service.ts runs a broker, gateway, prefill and decode worker in one process and answers", async () => {
  const example = fileURLToPath(new URL("../../examples/embed-in-your-service.ts", import.meta.url));
  const [cmd, args] = runtimeCommand(example, []);
  const { stdout } = await promisify(execFile)(cmd, args, {
    env: { ...process.env, NATS_URL: "", TANDEM_LOG_LEVEL: "warn" },
    timeout: 60_000,
  });
  expect(stdout).toMatch(/^, there was a little girl/);
  expect(stdout).toMatch(/done: 24 tokens/);
});
