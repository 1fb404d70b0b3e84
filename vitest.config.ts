import { defineConfig } from "vitest/config";

// Integration tests start real nats-servers and worker processes; on a 2-core machine they run one file
// at a time so timings and CPU stay sane.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
