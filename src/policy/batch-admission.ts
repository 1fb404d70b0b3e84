// Batch admission as a pure function: how many requests at the head of a FIFO queue may join a running batch
// without exceeding its sequence slots or its KV-token memory. Used for decode continuous batching (tokens =
// the sequence's final context, reserved up front so a running sequence is never preempted), batched prefill
// (tokens = the prompt) and colocated engines. No clocks, no I/O: the simulator and an engine call the same code.

export interface BatchLimits {
  /** Sequences the batch may hold at once. */
  readonly maxSequences: number;
  /** KV tokens the batch may hold at once (from the memory model: free HBM ÷ KV bytes per token). */
  readonly maxTokens: number;
}

export interface BatchUsage {
  readonly sequences: number;
  readonly tokens: number;
}

/**
 * The number of queued requests, taken strictly in order from the head, that fit next to `usage` under
 * `limits`. `tokensAt(i)` is what the i-th queued request would reserve. Head-of-line: admission stops at the
 * first request that does not fit (no overtaking, so long prompts are not starved). 0 with an empty batch means
 * the head request can never fit (the caller reports it rather than waiting forever).
 */
export function admitFromQueue(usage: BatchUsage, limits: BatchLimits, queued: number, tokensAt: (i: number) => number): number {
  let sequences = usage.sequences;
  let tokens = usage.tokens;
  let n = 0;
  while (n < queued && sequences < limits.maxSequences) {
    const t = tokensAt(n);
    if (tokens + t > limits.maxTokens) break;
    sequences++;
    tokens += t;
    n++;
  }
  return n;
}

