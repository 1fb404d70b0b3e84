// The simulator's future-event list: a binary min-heap on (time, insertion order). Events at the same time
// come out in the order they were pushed, so a run is a deterministic function of its inputs and seed.
export class EventQueue<T> {
  private readonly times: number[] = [];
  private readonly order: number[] = [];
  private readonly items: T[] = [];
  private pushed = 0;

  get size(): number {
    return this.items.length;
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    return this.items.length === 0 ? Number.POSITIVE_INFINITY : this.times[0]!;
  }

  push(time: number, item: T): void {
    if (Number.isNaN(time)) throw new RangeError("event time is NaN");
    const { times, order, items } = this;
    const seq = this.pushed++;
    let i = items.length;
    times.push(time);
    order.push(seq);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent]!;
      if (pt < time || (pt === time && order[parent]! < seq)) break;
      times[i] = pt;
      order[i] = order[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    times[i] = time;
    order[i] = seq;
    items[i] = item;
  }

  /**
   * Removes and returns the earliest event; undefined when empty. Bottom-up: the hole left at the root moves
   * down to a leaf along the earlier child (one comparison a level), then the last entry rises from there —
   * usually not far, as it was a leaf. Keys are unique (time, insertion order), so the order events come out
   * in is the same as with any other heap.
   */
  pop(): T | undefined {
    const { times, order, items } = this;
    const n = items.length;
    if (n === 0) return undefined;
    const top = items[0]!;
    const lastTime = times.pop()!;
    const lastOrder = order.pop()!;
    const lastItem = items.pop()!;
    const m = n - 1;
    if (m > 0) {
      let i = 0;
      while (true) {
        let c = 2 * i + 1;
        if (c >= m) break;
        const r = c + 1;
        if (r < m && (times[r]! < times[c]! || (times[r] === times[c] && order[r]! < order[c]!))) c = r;
        times[i] = times[c]!;
        order[i] = order[c]!;
        items[i] = items[c]!;
        i = c;
      }
      while (i > 0) {
        const parent = (i - 1) >> 1;
        const pt = times[parent]!;
        if (pt < lastTime || (pt === lastTime && order[parent]! < lastOrder)) break;
        times[i] = pt;
        order[i] = order[parent]!;
        items[i] = items[parent]!;
        i = parent;
      }
      times[i] = lastTime;
      order[i] = lastOrder;
      items[i] = lastItem;
    }
    return top;
  }
}
