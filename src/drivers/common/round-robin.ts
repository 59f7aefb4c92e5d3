/**
 * Per-event round robin over partitions (the reference consumer's order: p0#0, p1#0, p2#0,
 * p0#1, …). `lists[k]` are the events read from the k-th partition, in id order; `start` is the
 * list to serve first. Returns the merged events and the list to serve first next time.
 */
export function interleave<T>(lists: T[][], start: number): { events: T[]; next: number } {
  const n = lists.length;
  const events: T[] = [];
  const pos = new Array<number>(n).fill(0);
  let k = start % Math.max(1, n);
  let remaining = lists.reduce((s, l) => s + l.length, 0);
  let lastServed = -1;
  while (remaining > 0) {
    const l = lists[k] as T[];
    const i = pos[k] as number;
    if (i < l.length) {
      events.push(l[i] as T);
      pos[k] = i + 1;
      remaining--;
      lastServed = k;
    }
    k = (k + 1) % n;
  }
  return { events, next: lastServed < 0 ? start : (lastServed + 1) % n };
}
