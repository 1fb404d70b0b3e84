// Arrival processes: Poisson and bursty means, burstiness (variance of counts), trace parsing and rescaling,
// agentic sessions (closed loop: a call is issued only after the previous one finished).
import { describe, expect, it } from "vitest";
import { customWorkload } from "../../src/planner/workloads.ts";
import { agenticArrivals } from "../../src/sim/agentic.ts";
import { type Arrival, type ArrivalSource, burstyArrivals, poissonArrivals } from "../../src/sim/arrivals.ts";
import { seededRng } from "../../src/sim/random.ts";
import { parseTrace, TraceError, traceArrivals, traceRate } from "../../src/sim/trace.ts";

const workload = customWorkload(1000, 100);
const drain = (src: ArrivalSource) => {
  const out: Arrival[] = [];
  for (let a = src.next(); a; a = src.next()) out.push(a);
  return out;
};
/** Variance ÷ mean of arrivals per 1 s bin (1 for Poisson, larger for bursty traffic). */
const dispersion = (arrivals: readonly Arrival[], seconds: number) => {
  const bins = new Array<number>(seconds).fill(0);
  for (const a of arrivals) bins[Math.floor(a.time)]!++;
  const mean = bins.reduce((s, x) => s + x, 0) / seconds;
  return bins.reduce((s, x) => s + (x - mean) ** 2, 0) / seconds / mean;
};

describe("arrival processes", () => {
  it("Poisson: mean rate and index of dispersion ≈ 1", () => {
    const a = drain(poissonArrivals(50, workload, 2000, seededRng(1)));
    expect(Math.abs(a.length / 2000 / 50 - 1)).toBeLessThan(0.02);
    expect(Math.abs(dispersion(a, 2000) - 1)).toBeLessThan(0.1);
    expect(a.every((x, i) => i === 0 || x.time >= a[i - 1]!.time)).toBe(true);
  });

  it("bursty: same mean rate, counts far more dispersed than Poisson", () => {
    const a = drain(burstyArrivals(50, workload, 4000, seededRng(2)));
    expect(Math.abs(a.length / 4000 / 50 - 1)).toBeLessThan(0.06);
    expect(dispersion(a, 4000)).toBeGreaterThan(5);
  });

  it("trace: parses JSON lines and arrays under several field names, sorts, rescales to a rate", () => {
    const records = parseTrace(['{"timestamp": 12, "prompt_tokens": 5, "completion_tokens": 7}', '{"time": 10, "input": 3, "output": 4}', "", '{"arrival": 14, "inputTokens": 1, "outputTokens": 2}'].join("\n"));
    expect(records).toEqual([
      { time: 0, inputTokens: 3, outputTokens: 4 },
      { time: 2, inputTokens: 5, outputTokens: 7 },
      { time: 4, inputTokens: 1, outputTokens: 2 },
    ]);
    expect(parseTrace('[{"time": 1, "input": 2, "output": 3}]')).toHaveLength(1);
    expect(traceRate(records)).toBeCloseTo(0.5);
    expect(drain(traceArrivals(records, 100, 2)).map((a) => a.time)).toEqual([0, 0.5, 1]);
    expect(drain(traceArrivals(records, 3)).map((a) => a.time)).toEqual([0, 2]);
  });

  it("trace: bad records are typed errors naming the record and field", () => {
    expect(() => parseTrace("not json")).toThrow(TraceError);
    expect(() => parseTrace('{"time": 1, "input": 2}')).toThrow(/record 0: no output length/);
    expect(() => parseTrace('{"time": 1, "input": 2.5, "output": 3}')).toThrow(/"input" must be a positive integer/);
    expect(() => parseTrace("[]")).toThrow(/no records/);
  });

  it("agentic: sessions of growing calls, each issued only after the previous call finished", () => {
    const src = agenticArrivals(8, workload, 10_000, seededRng(3));
    const first = src.next()!;
    expect(first.call).toBe(0);
    expect(first.inputTokens).toBe(500);
    let call = first;
    const calls = [first];
    for (let finished = first.time + 2; ; finished = call.time + 2) {
      const next = src.followUp(call, finished);
      if (!next) break;
      expect(next.session).toBe(first.session);
      expect(next.time).toBeGreaterThanOrEqual(finished);
      calls.push(next);
      call = next;
    }
    expect(calls.map((c) => c.inputTokens)).toEqual([500, 643, 786, 929, 1071, 1214, 1357, 1500]);
    expect(calls.reduce((s, c) => s + c.inputTokens, 0) / calls.length).toBeCloseTo(1000, 0);
    const sessions = drain(src);
    expect(Math.abs((sessions.length + 1) / 10_000 / (8 / 8) - 1)).toBeLessThan(0.05); // sessions at rate / calls per session
  });
});
