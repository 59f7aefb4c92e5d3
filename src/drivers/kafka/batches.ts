/**
 * From the raw record batches of a fetched partition to the records a consumer may see: control
 * batches dropped, and — under read_committed — the records of aborted transactions dropped with
 * the Java consumer's algorithm (the client library's own filter is wrong when one response holds
 * several aborted transactions of a producer; docs/notes/platformatic-kafka.md §4.8).
 */
import type { FetchedPartition } from './client.js';
import type { Isolation } from './options.js';

export interface ConsumedRecord {
  offset: bigint;
  value: Buffer | null;
  headers: readonly [Buffer | null, Buffer | null][];
}

export interface PartitionRecords {
  records: ConsumedRecord[];
  /** Offset to fetch next (after the last batch, control batches included); undefined when no batch. */
  next: bigint | undefined;
}

/**
 * The deliverable records of `p` at or after `fetchOffset` (compressed batches may start before
 * it). The aborted-transaction list of the response marks the producers whose transactional
 * batches are skipped until their next control batch (the marker ending that transaction).
 */
export function consumableRecords(p: Pick<FetchedPartition, 'batches' | 'abortedTransactions'>, fetchOffset: bigint, isolation: Isolation): PartitionRecords {
  const out: ConsumedRecord[] = [];
  let next: bigint | undefined;
  const aborted = isolation === 'read_committed' ? [...p.abortedTransactions].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0)) : [];
  const abortedProducers = new Set<bigint>();
  for (const batch of p.batches) {
    const last = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    next = last + 1n;
    if (isolation === 'read_committed') {
      while (aborted.length > 0 && (aborted[0] as { firstOffset: bigint }).firstOffset <= last) {
        abortedProducers.add((aborted.shift() as { producerId: bigint }).producerId);
      }
    }
    if (batch.control) {
      // a transaction marker (abort, or commit) ends the producer's current transaction
      abortedProducers.delete(batch.producerId);
      continue;
    }
    if (isolation === 'read_committed' && batch.transactional && abortedProducers.has(batch.producerId)) continue;
    for (const r of batch.records) {
      const offset = batch.firstOffset + BigInt(r.offsetDelta);
      if (offset < fetchOffset) continue;
      out.push({ offset, value: r.value, headers: r.headers });
    }
  }
  return { records: out, next };
}
