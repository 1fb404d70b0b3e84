import { describe, expect, it } from "vitest";
import { RequestLifecycle } from "../../actors/request/request-lifecycle.ts";

describe("request lifecycle", () => {
  it("walks admitted → prefilling → transferring → decoding → done and measures each span", () => {
    const life = new RequestLifecycle(0);
    life.enter("prefilling", 1);
    life.enter("transferring", 5);
    life.enter("decoding", 7);
    life.enter("done", 20);
    expect(life.state).toBe("done");
    expect(life.span("transferring", "decoding")).toBe(2);
    expect(life.span("admitted", "done")).toBe(20);
  });

  it("allows finishing straight from prefill when no decode is needed", () => {
    const life = new RequestLifecycle(0);
    life.enter("prefilling", 1);
    life.enter("done", 2);
    expect(life.span("prefilling", "transferring")).toBe(0);
  });

  it("rejects transitions the machine does not have", () => {
    const life = new RequestLifecycle(0);
    expect(() => life.enter("decoding", 1)).toThrow(/illegal request transition admitted → decoding/);
    life.enter("failed", 2);
    expect(() => life.enter("prefilling", 3)).toThrow(/illegal/);
  });
});
