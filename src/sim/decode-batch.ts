// A continuous decode batch without per-sequence work per step: every sequence gains one token per step, so
// the batch keeps the summed context as a running total and each sequence's end as the step number at which
// it has produced its last token (a heap keyed by step). A step costs O(1) plus O(log n) per finished sequence.
import { EventQueue } from "./event-queue.ts";

export interface BatchedSequence {
  /** KV tokens the sequence reserved when it joined (released when it finishes). */
  reservedTokens: number;
  joinStep: number;
  joinContext: number;
}

export class DecodeBatch<S extends BatchedSequence> {
  running = 0;
  reservedTokens = 0;
  sumContext = 0;
  steps = 0;
  private readonly ends = new EventQueue<S>();

  /** Adds a sequence holding `context` tokens that will finish after `decodeSteps` more steps (≥ 1). */
  join(seq: S, context: number, reservedTokens: number, decodeSteps: number): void {
    seq.joinStep = this.steps;
    seq.joinContext = context;
    seq.reservedTokens = reservedTokens;
    this.running++;
    this.reservedTokens += reservedTokens;
    this.sumContext += context;
    this.ends.push(this.steps + decodeSteps, seq);
  }

  /**
   * One step done: every sequence grew by a token. The ones that produced their last token then leave through
   * `nextFinished`, called until it returns undefined.
   */
  step(): void {
    this.steps++;
    this.sumContext += this.running;
  }

  /** A sequence that has produced its last token, taken out of the batch; undefined when none is left. */
  nextFinished(): S | undefined {
    const step = this.steps;
    if (!(this.ends.peekTime() <= step)) return undefined;
    const seq = this.ends.pop()!;
    this.running--;
    this.reservedTokens -= seq.reservedTokens;
    this.sumContext -= seq.joinContext + (step - seq.joinStep);
    return seq;
  }
}
