// Replayed request traces: a JSON array or JSON lines of {time, input, output} records (several common
// spellings accepted), optionally rescaled in time to a target mean rate.
import { readFileSync } from "node:fs";
import { type Arrival, type ArrivalSource, noFollowUp } from "./arrivals.ts";

export class TraceError extends Error {
  override readonly name = "TraceError";
}

export interface TraceRecord {
  readonly time: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
}

const TIME_KEYS = ["time", "timestamp", "arrival", "arrival_time"] as const;
const INPUT_KEYS = ["input", "inputTokens", "input_tokens", "prompt_tokens", "input_length"] as const;
const OUTPUT_KEYS = ["output", "outputTokens", "output_tokens", "completion_tokens", "output_length"] as const;

function field(rec: Record<string, unknown>, keys: readonly string[], what: string, where: string, integer: boolean): number {
  for (const k of keys) {
    const v = rec[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (integer && (!Number.isInteger(v) || v < 1))) {
      throw new TraceError(`${where}: "${k}" must be a ${integer ? "positive integer" : "non-negative number"}, got ${JSON.stringify(v)}`);
    }
    return v;
  }
  throw new TraceError(`${where}: no ${what} field (one of ${keys.join(", ")})`);
}

/** Parse trace text (a JSON array, or one JSON object per line); records are sorted by time, starting at 0. */
export function parseTrace(text: string, name = "trace"): TraceRecord[] {
  const trimmed = text.trim();
  let raw: unknown[];
  try {
    raw = trimmed.startsWith("[") ? (JSON.parse(trimmed) as unknown[]) : trimmed.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  } catch (e) {
    throw new TraceError(`${name} is neither a JSON array nor JSON lines: ${(e as Error).message}`);
  }
  if (raw.length === 0) throw new TraceError(`${name} has no records`);
  const records = raw.map((r, i) => {
    const where = `${name} record ${i}`;
    if (typeof r !== "object" || r === null || Array.isArray(r)) throw new TraceError(`${where} is not an object`);
    const rec = r as Record<string, unknown>;
    return {
      time: field(rec, TIME_KEYS, "time", where, false),
      inputTokens: field(rec, INPUT_KEYS, "input length", where, true),
      outputTokens: field(rec, OUTPUT_KEYS, "output length", where, true),
    };
  });
  records.sort((a, b) => a.time - b.time);
  const t0 = records[0]!.time;
  return records.map((r) => ({ ...r, time: r.time - t0 }));
}

export function readTrace(path: string): TraceRecord[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new TraceError(`cannot read trace ${path}: ${(e as Error).message}`);
  }
  return parseTrace(text, path);
}

/** Mean arrival rate of a trace (requests/s over its span). */
export function traceRate(records: readonly TraceRecord[]): number {
  const span = records[records.length - 1]!.time;
  return span > 0 ? (records.length - 1) / span : Number.POSITIVE_INFINITY;
}

/** Replays `records` up to `until`; with `rate`, times are scaled so the trace's mean rate becomes `rate`. */
export function traceArrivals(records: readonly TraceRecord[], until: number, rate?: number): ArrivalSource {
  const scale = rate === undefined ? 1 : traceRate(records) / rate;
  let i = 0;
  return {
    next: (): Arrival | null => {
      const r = records[i++];
      if (!r || r.time * scale >= until) return null;
      return { time: r.time * scale, inputTokens: r.inputTokens, outputTokens: r.outputTokens, session: -1, call: 0 };
    },
    followUp: noFollowUp,
  };
}
