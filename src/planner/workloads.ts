// Workload presets for the planner: the input (prompt) and output lengths a capacity plan is sized for.
// Lengths are fixed per preset (the closed-form planner uses means; a simulator would use distributions).
export interface Workload {
  readonly id: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Why these lengths. */
  readonly why: string;
}

export const WORKLOADS: readonly Workload[] = [
  { id: "prefill-heavy", inputTokens: 8192, outputTokens: 256, why: "long prompt, short answer (summarisation, document QA): 32 input tokens per output token" },
  { id: "decode-heavy", inputTokens: 1024, outputTokens: 4096, why: "short prompt, long generation (reasoning traces, long-form writing): 4 output tokens per input token" },
  { id: "chat", inputTokens: 1024, outputTokens: 512, why: "conversational turn with some history: ShareGPT-like means" },
  { id: "rag", inputTokens: 4096, outputTokens: 384, why: "retrieved passages stuffed into the prompt, a paragraph answer" },
  { id: "agentic", inputTokens: 2048, outputTokens: 128, why: "one call of a multi-step agent: growing tool context, short tool-call outputs (no prefix cache assumed)" },
];

export function findWorkload(id: string): Workload {
  const w = WORKLOADS.find((x) => x.id === id);
  if (!w) throw new RangeError(`unknown workload "${id}"; known: ${WORKLOADS.map((x) => x.id).join(", ")}`);
  return w;
}

export function customWorkload(inputTokens: number, outputTokens: number): Workload {
  for (const [n, v] of [["input", inputTokens], ["output", outputTokens]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${n} tokens must be a positive integer, got ${v}`);
  }
  return { id: `custom-${inputTokens}x${outputTokens}`, inputTokens, outputTokens, why: "user lengths" };
}
