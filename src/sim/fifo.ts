// A first-in first-out queue with O(1) push and shift: a ring buffer (power-of-two capacity, doubled when
// full), so a queue that is filled and drained all the time allocates nothing once it has grown to its peak.
export class Fifo<T> {
  private items: Array<T | undefined> = new Array<T | undefined>(16).fill(undefined);
  private head = 0;
  private count = 0;
  private mask = 15;

  get length(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & this.mask] = item;
    this.count++;
  }

  /** The i-th queued item from the head (0 = next out). */
  at(i: number): T {
    return this.items[(this.head + i) & this.mask]!;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined; // no reference kept to what left
    this.head = (this.head + 1) & this.mask;
    this.count--;
    return item;
  }

  private grow(): void {
    const n = this.items.length;
    const bigger = new Array<T | undefined>(2 * n).fill(undefined);
    for (let i = 0; i < n; i++) bigger[i] = this.items[(this.head + i) & this.mask];
    this.items = bigger;
    this.head = 0;
    this.mask = 2 * n - 1;
  }
}
