/**
 * Resume without duplicates (forwarding.md §5, `delivery: no_duplicates`). Positions are persisted
 * after the destination confirmed a batch, so a crash in between leaves events that the destination
 * holds but the source will deliver again. At start, the destination's tail is scanned for this
 * policy's provenance header (`diaspora-src: <source id>#<partition>@<id>`): every source event
 * found there at or after the position the source resumes from is skipped (and acknowledged) when
 * it comes again. A set rather than a "highest id seen" bound: with several destination partitions
 * per source partition (hash/auto mappings) a crash can leave gaps, which a bound would skip.
 */
import type { Consumer, Event } from '../api/consumer.js';
import { NoDataSelector } from '../api/data-selection.js';
import type { EventID } from '../api/driver-spi.js';
import type { TopicHandle } from '../api/topic.js';

export interface ScanReport {
  /** Destination events read. */
  scanned: number;
  /** Source events found in the destination that the source will deliver again. */
  found: number;
  /** Destination partitions whose scanned tail may not reach back to the resume positions. */
  incomplete: number[];
}

export class ForwardedSet {
  private readonly ids = new Map<number, Set<bigint>>();
  private count = 0;

  /** Source events still to be skipped. */
  get size(): number {
    return this.count;
  }

  private add(partition: number, id: bigint): void {
    let s = this.ids.get(partition);
    if (s === undefined) this.ids.set(partition, (s = new Set()));
    if (!s.has(id)) {
      s.add(id);
      this.count++;
    }
  }

  /** Whether `e` was already forwarded (it is then forgotten: it comes again only once). */
  take(e: Event): boolean {
    if (this.count === 0) return false;
    const s = this.ids.get(e.partitionIndex);
    if (s === undefined || !s.delete(e.id)) return false;
    this.count--;
    return true;
  }

  /**
   * Reads the last `scanLimit` events of every destination partition (metadata only) and keeps
   * the source events of `sourceId` at or after `resumeAt` (the source's next positions).
   */
  static async scan(dst: TopicHandle, sourceId: string, resumeAt: ReadonlyMap<number, EventID>, scanLimit: number): Promise<{ set: ForwardedSet; report: ScanReport }> {
    const set = new ForwardedSet();
    const report: ScanReport = { scanned: 0, found: 0, incomplete: [] };
    const probe = await dst.consumer('', { startFrom: 'latest', dataSelector: NoDataSelector });
    let ends: Map<number, EventID>;
    try {
      ends = await probe.endPositions();
    } finally {
      await probe.close();
    }
    const startAt = new Map<number, EventID>();
    let expected = 0;
    for (const [p, end] of ends) {
      const start = end > BigInt(scanLimit) ? end - BigInt(scanLimit) : 0n;
      startAt.set(p, start);
      expected += Number(end - start);
    }
    if (expected === 0) return { set, report };
    const prefix = `${sourceId}#`;
    // per destination partition and source partition, the lowest source id seen in the window
    const lowest = new Map<number, Map<number, bigint>>();
    const c: Consumer = await dst.consumer('', { startFrom: 'earliest', startAt, dataSelector: NoDataSelector, batchSize: 1024 });
    try {
      while (report.scanned < expected) {
        const batch = await c.pullBatch(4096, 2000);
        if (batch.length === 0) break; // nothing more within 2 s: the ends were reached
        for (const e of batch) {
          report.scanned++;
          const src = e.headers['diaspora-src'];
          if (src === undefined || !src.startsWith(prefix)) continue;
          const at = src.lastIndexOf('@');
          const partition = Number(src.slice(prefix.length, at));
          let id: bigint;
          try {
            id = BigInt(src.slice(at + 1));
          } catch {
            continue; // not ours after all
          }
          if (!Number.isInteger(partition)) continue;
          let low = lowest.get(e.partitionIndex);
          if (low === undefined) lowest.set(e.partitionIndex, (low = new Map()));
          const l = low.get(partition);
          if (l === undefined || id < l) low.set(partition, id);
          const from = resumeAt.get(partition);
          if (from !== undefined && id >= from) set.add(partition, id);
        }
      }
    } finally {
      await c.close();
    }
    report.found = set.size;
    // a window that starts after the partition's beginning reaches back far enough only if, for
    // every source partition in it, it also holds events from before the resume position
    for (const [p, start] of startAt) {
      if (start === 0n) continue;
      for (const [sp, l] of lowest.get(p) ?? []) {
        const from = resumeAt.get(sp);
        if (from !== undefined && l >= from) {
          report.incomplete.push(p);
          break;
        }
      }
    }
    return { set, report };
  }
}
