// The cluster-wide prefix index: which prefill worker holds which prompt prefixes, so a prompt can go where its
// longest prefix is already cached. Pure and synchronous; fed from the workers' prefix events.
//
// Each worker has as many slots as its engine has sequences, and the index takes a slot for a prompt the way the
// engine takes a sequence (src/engine/llama-cpp.ts): among the slots not in use, the one sharing the most leading
// blocks with the prompt (its tail is overwritten), else the least recently used (evicted). A slot is pinned
// from the prompt's start until its worker reports it finished, and a pinned slot is never taken. Should a
// "finished" be lost, the worker's next prompt finding every slot pinned frees the oldest pin (the engine cannot
// have more prompts in flight than sequences). A worker that restarted (new incarnation) starts empty.
import { sharedBlocks } from "./prefix-hash.ts";

interface Slot {
  chain: ReadonlyArray<number>;
  /** The request using the slot, if any. */
  pinnedBy: string | undefined;
  /** Tick of its last use: lower is evicted first. */
  lastUsed: number;
}

interface WorkerSlots {
  readonly incarnation: number;
  readonly slots: Slot[];
}

const emptySlot = (): Slot => ({ chain: [], pinnedBy: undefined, lastUsed: 0 });

export class PrefixIndex {
  private readonly workers = new Map<string, WorkerSlots>();
  private tick = 0;

  /** `worker` (process `incarnation`, `capacity` sequences) started prefilling `request`, whose prompt has `chain`. */
  started(worker: string, incarnation: number, capacity: number, request: string, chain: ReadonlyArray<number>): void {
    let entry = this.workers.get(worker);
    if (entry === undefined || entry.incarnation !== incarnation) {
      entry = { incarnation, slots: [] };
      this.workers.set(worker, entry);
    }
    const { slots } = entry;
    while (slots.length < capacity) slots.push(emptySlot());
    while (slots.length > Math.max(1, capacity)) slots.splice(this.leastRecent(slots, (s) => s.pinnedBy === undefined) ?? 0, 1);
    const shared = (s: Slot) => sharedBlocks(chain, s.chain);
    let chosen: number | undefined;
    slots.forEach((slot, i) => {
      if (slot.pinnedBy !== undefined) return;
      const best = chosen === undefined ? undefined : slots[chosen]!;
      if (best === undefined || shared(slot) > shared(best) || (shared(slot) === shared(best) && slot.lastUsed < best.lastUsed)) chosen = i;
    });
    chosen ??= this.leastRecent(slots, () => true)!;
    slots[chosen] = { chain, pinnedBy: request, lastUsed: ++this.tick };
  }

  /** `worker` is done with `request`'s sequence: its prefix stays cached, most recently used. */
  finished(worker: string, request: string): void {
    const slot = this.workers.get(worker)?.slots.find((s) => s.pinnedBy === request);
    if (slot === undefined) return;
    slot.pinnedBy = undefined;
    slot.lastUsed = ++this.tick;
  }

  /** Leading blocks of `chain` each worker holds (workers holding none are left out). */
  cachedBlocks(chain: ReadonlyArray<number>): Map<string, number> {
    const found = new Map<string, number>();
    for (const [worker, { slots }] of this.workers) {
      const best = Math.max(0, ...slots.map((s) => sharedBlocks(chain, s.chain)));
      if (best > 0) found.set(worker, best);
    }
    return found;
  }

  private leastRecent(slots: ReadonlyArray<Slot>, eligible: (s: Slot) => boolean): number | undefined {
    let found: number | undefined;
    slots.forEach((s, i) => {
      if (eligible(s) && (found === undefined || s.lastUsed < slots[found]!.lastUsed)) found = i;
    });
    return found;
  }
}
