/**
 * One coarse wheel for every held listener instead of one timer each: scheduling and cancelling
 * are O(1) Set operations, and a single interval drives `advance`. Deadlines round up to the
 * next slot, so an item never fires early.
 */
export class TimerWheel<T> {
  private readonly slots = new Map<number, Set<T>>();
  private lastSlot: number;

  constructor(
    private readonly resolutionMs: number,
    now: number,
  ) {
    this.lastSlot = Math.floor(now / resolutionMs);
  }

  /** Schedules `item` to fire at or after `deadline`; returns the slot to pass to `cancel`. */
  schedule(item: T, deadline: number): number {
    const slot = Math.max(Math.ceil(deadline / this.resolutionMs), this.lastSlot + 1);
    let set = this.slots.get(slot);
    if (!set) {
      set = new Set();
      this.slots.set(slot, set);
    }
    set.add(item);
    return slot;
  }

  cancel(item: T, slot: number): void {
    const set = this.slots.get(slot);
    if (set?.delete(item) && set.size === 0) this.slots.delete(slot);
  }

  /** Returns every item whose deadline is ≤ now, in deadline order, and forgets them. */
  advance(now: number): T[] {
    const target = Math.floor(now / this.resolutionMs);
    const due: T[] = [];
    if (target <= this.lastSlot) return due;
    if (target - this.lastSlot > this.slots.size * 4) {
      // A long pause (or a big clock jump): walk the occupied slots, not every empty one.
      const keys = [...this.slots.keys()].filter((k) => k <= target).sort((a, b) => a - b);
      for (const key of keys) this.take(key, due);
    } else {
      for (let slot = this.lastSlot + 1; slot <= target; slot++) this.take(slot, due);
    }
    this.lastSlot = target;
    return due;
  }

  private take(slot: number, into: T[]): void {
    const set = this.slots.get(slot);
    if (!set) return;
    this.slots.delete(slot);
    for (const item of set) into.push(item);
  }
}
