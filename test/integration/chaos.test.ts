// The chaos harness as CI runs it: `npm run chaos` for one minute on a fixed seed — 3 prefill and 3 decode
// worker processes under load, a SIGKILL every 10 s, a SIGSTOP every 20 s, every fault class injected. Its last
// line is the summary; nothing may be lost, duplicated or left with a gap, and every failure must be typed.
import { spawn } from "node:child_process";
import { expect, it } from "vitest";
import { runtimeCommand } from "../../src/cluster/local-cluster.ts";

const runChaosCli = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const [cmd, argv] = runtimeCommand(new URL("../../src/chaos/main.ts", import.meta.url).pathname, args);
    const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += String(d)));
    child.stderr.on("data", (d) => (stderr += String(d)));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });

it("chaos run: nothing lost, no duplicate or missing token, every failure typed, every fault class injected", async () => {
  const { code, stdout, stderr } = await runChaosCli(["--seed", "42", "--minutes", "1"]);
  const lines = stdout.trim().split("\n");
  const summary = JSON.parse(lines.at(-1)!);
  expect(stderr).toContain("chaos: seed 42");
  expect(summary).toMatchObject({ seed: 42, lost: 0, duplicateTokens: 0, gapTokens: 0, mismatched: 0, overDeadline: 0, ok: true });
  expect(summary.accepted).toBe(summary.completed + summary.failedTyped + summary.lost);
  expect(summary.completed).toBeGreaterThan(100);
  expect(summary.killed).toBe(5);
  expect(summary.stopped).toBe(2);
  expect(summary.migrations).toBeGreaterThan(0);
  expect(summary.restarts).toBeGreaterThanOrEqual(summary.killed);
  for (const count of Object.values(summary.faultsInjected)) expect(count).toBeGreaterThan(0);
  for (const reason of Object.keys(summary.failures)) expect(reason).toMatch(/^(Unavailable|DeadlineExceeded|Overloaded|InvalidRequest)\//);
  expect(code).toBe(0);
}, 240_000);
