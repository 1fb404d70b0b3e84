// The states one request passes through. The gateway records every transition with its time, so a failed
// request says where it failed and the final message's timings come from the same record.

export type RequestState = "admitted" | "prefilling" | "transferring" | "decoding" | "done" | "failed";

const NEXT: Record<RequestState, ReadonlyArray<RequestState>> = {
  admitted: ["prefilling", "failed"],
  prefilling: ["transferring", "done", "failed"],
  transferring: ["decoding", "failed"],
  decoding: ["done", "failed"],
  done: [],
  failed: [],
};

export class RequestLifecycle {
  private current: RequestState = "admitted";
  readonly enteredAt: Partial<Record<RequestState, number>>;

  constructor(admittedAt: number) {
    this.enteredAt = { admitted: admittedAt };
  }

  get state(): RequestState {
    return this.current;
  }

  /** Moves to `next`; a transition the machine does not allow is a bug, so it throws. */
  enter(next: RequestState, at: number): void {
    if (this.current === next) return;
    if (!NEXT[this.current].includes(next)) throw new Error(`illegal request transition ${this.current} → ${next}`);
    this.current = next;
    this.enteredAt[next] = at;
  }

  /** Milliseconds spent from entering `from` until entering `to` (0 when either never happened). */
  span(from: RequestState, to: RequestState): number {
    const a = this.enteredAt[from];
    const b = this.enteredAt[to];
    return a === undefined || b === undefined ? 0 : b - a;
  }
}
