// The request actor's record of one answer's token stream. Every chunk a worker produces comes here first
// (on a subject private to one attempt) and goes on to the caller only if it is the next one: a chunk the
// caller already has is a replay from a recovered attempt and is checked against what was sent, then dropped;
// a chunk past the next one means one went missing, and the attempt is given up. So the caller sees every
// position exactly once, in order, whatever attempts it took.

export type RelayVerdict =
  | { readonly _tag: "Forwarded" }
  | { readonly _tag: "Replayed" }
  | { readonly _tag: "Gap"; readonly expected: number; readonly got: number }
  | { readonly _tag: "Diverged"; readonly seq: number; readonly sent: ReadonlyArray<number>; readonly got: ReadonlyArray<number> };

const sameTokens = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.length === b.length && a.every((t, i) => t === b[i]);

export class TokenRelay {
  /** Token ids of each chunk sent to the caller, by seq. */
  private readonly sent: Array<ReadonlyArray<number>> = [];
  /** Chunks that arrived again from a later attempt and matched what was sent. */
  replayed = 0;
  /** performance.now() when the first chunk went to the caller. */
  firstForwardedAt: number | undefined;

  constructor(private readonly forward: (payload: Uint8Array) => void) {}

  /** Chunks the caller has received: the seq the next new chunk must carry. */
  get nextSeq(): number {
    return this.sent.length;
  }

  /** Token ids sent so far, in order. */
  get tokens(): ReadonlyArray<number> {
    return this.sent.flat();
  }

  /** Takes the chunk at `seq` carrying `tokens`, encoded as `payload` (forwarded byte for byte). */
  accept(seq: number, tokens: ReadonlyArray<number>, payload: Uint8Array): RelayVerdict {
    if (seq === this.sent.length) {
      this.sent.push(tokens);
      this.forward(payload);
      if (seq === 0) this.firstForwardedAt = performance.now();
      return { _tag: "Forwarded" };
    }
    if (seq > this.sent.length) return { _tag: "Gap", expected: this.sent.length, got: seq };
    const sent = this.sent[seq]!;
    if (!sameTokens(sent, tokens)) return { _tag: "Diverged", seq, sent, got: tokens };
    this.replayed++;
    return { _tag: "Replayed" };
  }
}
