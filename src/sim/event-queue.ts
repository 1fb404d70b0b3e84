// The simulator's future-event list: a min-queue on (time, insertion order). Events at the same time come out
// in the order they were pushed, so a run is a deterministic function of its inputs and seed.
//
// Two parts hold the events: a binary min-heap, and a "lane" — a FIFO of events pushed in time order (each at
// or after the one pushed into the lane before it). A push goes to the lane when it is not earlier than the
// lane's last event, else to the heap; a pop takes the earlier (time, insertion order) of the heap's top and the
// lane's head. Keys are unique, so events come out in exactly the order one heap would give, while events
// scheduled in time order (a decode step's end, a run of equal KV transfers) cost O(1) instead of O(log n).
export class EventQueue<T> {
  private readonly times: number[] = [];
  private readonly order: number[] = [];
  private readonly items: T[] = [];
  private laneTimes: number[] = new Array<number>(16).fill(0);
  private laneOrder: number[] = new Array<number>(16).fill(0);
  private laneItems: Array<T | undefined> = new Array<T | undefined>(16).fill(undefined);
  private laneHead = 0;
  private laneCount = 0;
  private laneMask = 15;
  private pushed = 0;

  get size(): number {
    return this.items.length + this.laneCount;
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    const heap = this.items.length === 0 ? Number.POSITIVE_INFINITY : this.times[0]!;
    if (this.laneCount === 0) return heap;
    const lane = this.laneTimes[this.laneHead]!;
    return lane < heap ? lane : heap;
  }

  push(time: number, item: T): void {
    if (Number.isNaN(time)) throw new RangeError("event time is NaN");
    const seq = this.pushed++;
    const n = this.laneCount;
    if (n === 0 || time >= this.laneTimes[(this.laneHead + n - 1) & this.laneMask]!) {
      if (n === this.laneItems.length) this.growLane();
      const at = (this.laneHead + n) & this.laneMask;
      this.laneTimes[at] = time;
      this.laneOrder[at] = seq;
      this.laneItems[at] = item;
      this.laneCount = n + 1;
      return;
    }
    this.times.push(time);
    this.order.push(seq);
    this.items.push(item);
    this.siftUp(this.items.length - 1, time, seq, item);
  }

  /** Puts (time, seq, item) in the hole at `i`, moving it up past every later parent. */
  private siftUp(i: number, time: number, seq: number, item: T): void {
    const { times, order, items } = this;
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

  /** Removes and returns the earliest event; undefined when empty. */
  pop(): T | undefined {
    const n = this.items.length;
    if (this.laneCount > 0) {
      const head = this.laneHead;
      const lt = this.laneTimes[head]!;
      if (n === 0 || lt < this.times[0]! || (lt === this.times[0] && this.laneOrder[head]! < this.order[0]!)) {
        const item = this.laneItems[head];
        this.laneItems[head] = undefined;
        this.laneHead = (head + 1) & this.laneMask;
        this.laneCount--;
        return item;
      }
    }
    return n === 0 ? undefined : this.popHeap();
  }

  /**
   * The heap's top, bottom-up: the hole left at the root moves down to a leaf along the earlier child (one
   * comparison a level), then the last entry rises from there — usually not far, as it was a leaf.
   */
  private popHeap(): T {
    const { times, order, items } = this;
    const n = items.length;
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
      this.siftUp(i, lastTime, lastOrder, lastItem);
    }
    return top;
  }

  private growLane(): void {
    const n = this.laneItems.length;
    const times = new Array<number>(2 * n).fill(0);
    const order = new Array<number>(2 * n).fill(0);
    const items = new Array<T | undefined>(2 * n).fill(undefined);
    for (let i = 0; i < n; i++) {
      const at = (this.laneHead + i) & this.laneMask;
      times[i] = this.laneTimes[at]!;
      order[i] = this.laneOrder[at]!;
      items[i] = this.laneItems[at];
    }
    this.laneTimes = times;
    this.laneOrder = order;
    this.laneItems = items;
    this.laneHead = 0;
    this.laneMask = 2 * n - 1;
  }
}
