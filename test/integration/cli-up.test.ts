// The main job as a user runs it: `tandem up` starts a cluster of real processes and prints how to call it,
// `tandem generate` streams an answer from it, and Ctrl-C (SIGINT) stops every process it started.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { selfCommand } from "../../src/cluster/local-cluster.ts";
import { canConnect } from "../../src/cluster/nats-server.ts";
import { isAlive } from "../support/cluster.ts";


it("tandem up serves tandem generate and stops every process on Ctrl-C", async () => {
  const [cmd, args] = selfCommand(["up"]);
  const env = { ...process.env, NATS_URL: "", TANDEM_CLUSTER: "clitest" };
  const up = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  up.stdout.on("data", (d) => (stdout += String(d)));
  up.stderr.on("data", () => undefined);
  const deadline = Date.now() + 60_000;
  while (!stdout.includes("Ctrl-C stops everything")) {
    if (Date.now() > deadline || up.exitCode !== null) throw new Error(`tandem up did not come up:\n${stdout}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const url = stdout.match(/is up on (nats:\/\/127\.0\.0\.1:(\d+))/);
  expect(url).not.toBeNull();
  const pids = [...stdout.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
  expect(pids.length).toBe(6); // gateway, broker, 2 prefill, 2 decode
  expect(pids.every(isAlive)).toBe(true);

  const [genCmd, genArgs] = selfCommand(["generate", "Once upon a time", "--max-tokens", "12"]);
  const generated = await promisify(execFile)(genCmd, genArgs, { env: { ...env, NATS_URL: url![1] }, timeout: 30_000 });
  expect(generated.stdout).toMatch(/^, there was a little girl/);
  expect(generated.stderr).toMatch(/12 completion tokens/);

  up.kill("SIGINT");
  const code = await new Promise<number | null>((resolve) => up.once("exit", (c) => resolve(c)));
  expect(code).toBe(0);
  expect(pids.filter(isAlive)).toEqual([]);
  expect(await canConnect(Number(url![2]))).toBe(false);
});
