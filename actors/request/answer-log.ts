// What the gateway has sent for each recent request — every chunk and the final message, byte for byte — so a
// client that lost messages while NATS was restarting can ask again (`resume`) and get them without the request
// running twice. Entries leave `keepMs` after their final message.
import type { AnswerStore } from "./generate-endpoint.ts";

interface Answer {
  readonly payloads: Uint8Array[];
  final: Uint8Array | undefined;
  doneAt: number;
}

export class AnswerLog implements AnswerStore {
  private readonly answers = new Map<string, Answer>();

  constructor(private readonly keepMs: number) {}

  /** Starts the record of a request (call before anything is sent for it). */
  open(requestId: string): void {
    this.answers.set(requestId, { payloads: [], final: undefined, doneAt: Number.POSITIVE_INFINITY });
  }

  chunk(requestId: string, payload: Uint8Array): void {
    this.answers.get(requestId)?.payloads.push(payload);
  }

  final(requestId: string, payload: Uint8Array): void {
    const answer = this.answers.get(requestId);
    if (answer === undefined) return;
    const now = performance.now();
    answer.final = payload;
    answer.doneAt = now;
    this.sweep(now);
  }

  /** Everything sent so far for `requestId`, in order (the final last, if sent), or undefined if unknown. */
  sent(requestId: string): ReadonlyArray<Uint8Array> | undefined {
    const answer = this.answers.get(requestId);
    return answer === undefined ? undefined : answer.final === undefined ? answer.payloads : [...answer.payloads, answer.final];
  }

  private sweep(now: number): void {
    for (const [id, answer] of this.answers) if (now - answer.doneAt > this.keepMs) this.answers.delete(id);
  }
}
