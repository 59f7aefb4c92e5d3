/** Records a consumer may see from fetched batches: control batches and aborted transactions dropped. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { consumableRecords } from '../../../src/drivers/kafka/batches.js';
import type { RawBatch } from '../../../src/drivers/kafka/client.js';

function batch(first: number, n: number, o: { pid?: bigint; tx?: boolean; control?: boolean } = {}): RawBatch {
  return {
    firstOffset: BigInt(first),
    lastOffsetDelta: n - 1,
    firstTimestamp: 1000n,
    producerId: o.pid ?? -1n,
    transactional: o.tx ?? false,
    control: o.control ?? false,
    records: Array.from({ length: n }, (_, i) => ({ offsetDelta: i, value: Buffer.from(String(first + i)), headers: [] })),
  };
}

describe('kafka fetched batches', () => {
  // producer 7: aborts tx1 (0-1, marker 2), commits tx2 (3-4, marker 5), aborts tx3 (6-7, marker 8); 9 plain
  const batches = [
    batch(0, 2, { pid: 7n, tx: true }),
    batch(2, 1, { pid: 7n, tx: true, control: true }),
    batch(3, 2, { pid: 7n, tx: true }),
    batch(5, 1, { pid: 7n, tx: true, control: true }),
    batch(6, 2, { pid: 7n, tx: true }),
    batch(8, 1, { pid: 7n, tx: true, control: true }),
    batch(9, 1),
  ];
  const aborted = [
    { producerId: 7n, firstOffset: 0n },
    { producerId: 7n, firstOffset: 6n },
  ];

  it('read_committed drops every aborted transaction of a producer in one response', { timeout: 5000 }, () => {
    const r = consumableRecords({ batches, abortedTransactions: aborted }, 0n, 'read_committed');
    assert.deepEqual(r.records.map((x) => x.offset), [3n, 4n, 9n]);
    assert.equal(r.next, 10n);
  });

  it('read_uncommitted keeps transactional records, drops control batches', { timeout: 5000 }, () => {
    const r = consumableRecords({ batches, abortedTransactions: aborted }, 0n, 'read_uncommitted');
    assert.deepEqual(r.records.map((x) => x.offset), [0n, 1n, 3n, 4n, 6n, 7n, 9n]);
  });

  it('a fetch starting at an abort marker or inside a batch', { timeout: 5000 }, () => {
    const r = consumableRecords({ batches: batches.slice(5), abortedTransactions: [] }, 8n, 'read_committed');
    assert.deepEqual(r.records.map((x) => x.offset), [9n]);
    const r2 = consumableRecords({ batches: [batch(10, 5)], abortedTransactions: [] }, 12n, 'read_committed');
    assert.deepEqual(r2.records.map((x) => x.offset), [12n, 13n, 14n]);
    assert.equal(r2.next, 15n);
    assert.equal(consumableRecords({ batches: [], abortedTransactions: [] }, 0n, 'read_committed').next, undefined);
  });
});
