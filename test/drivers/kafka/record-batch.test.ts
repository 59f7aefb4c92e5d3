/**
 * Our record batch encoder against an independent decoder (the library's readRecordsBatch) and a
 * bitwise CRC-32C: every field, varint length boundaries, headers, compression, sequences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Reader, compressionsAlgorithms, crc32c, createRecordsBatch, readRecordsBatch } from '@platformatic/kafka';
import { BATCH_HEADER_SIZE, decodeRecordBatches, encodeRecordBatch, encodeRuns, nextSequence, type BatchRecord } from '../../../src/drivers/kafka/record-batch.js';
import { encodeValue, OctopusRun } from '../../../src/drivers/kafka/record-layout.js';
import { DataSegments } from '../../../src/api/data-segments.js';

/** CRC-32C, bit by bit (Castagnoli, reflected polynomial 0x82F63B78): the reference for the checksum. */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

const params = { producerId: 4242n, producerEpoch: 3, baseSequence: 17, timestamp: 1_795_000_000_123n, crc32c: crc32cBitwise };

function decode(buf: Buffer) {
  return readRecordsBatch(Reader.from(buf)) as unknown as {
    firstOffset: bigint;
    length: number;
    partitionLeaderEpoch: number;
    magic: number;
    crc: number;
    attributes: number;
    lastOffsetDelta: number;
    firstTimestamp: bigint;
    maxTimestamp: bigint;
    producerId: bigint;
    producerEpoch: number;
    firstSequence: number;
    records: { attributes: number; timestampDelta: bigint; offsetDelta: number; key: Buffer | null; value: Buffer; headers: [Buffer, Buffer][] }[];
  };
}

describe('kafka record batches (message format v2)', () => {
  it('encode every header field, the CRC-32C and each record as the library decodes them', () => {
    const records: BatchRecord[] = [
      { value: Buffer.from('first') },
      { value: Buffer.alloc(0), headers: [[Buffer.from('k'), Buffer.from('v')]] },
      { value: Buffer.from('third'), headers: [[Buffer.from('a'), Buffer.alloc(0)], [Buffer.from('ü'), Buffer.from('x'.repeat(200))]] },
    ];
    const buf = encodeRecordBatch(records, params);
    const b = decode(buf);
    assert.equal(b.firstOffset, 0n);
    assert.equal(b.length, buf.length - 12);
    assert.equal(b.partitionLeaderEpoch, -1);
    assert.equal(b.magic, 2);
    assert.equal(b.crc, crc32cBitwise(buf.subarray(21)));
    assert.equal(b.attributes, 0);
    assert.equal(b.lastOffsetDelta, 2);
    assert.equal(b.firstTimestamp, params.timestamp);
    assert.equal(b.maxTimestamp, params.timestamp);
    assert.equal(b.producerId, 4242n);
    assert.equal(b.producerEpoch, 3);
    assert.equal(b.firstSequence, 17);
    assert.equal(b.records.length, 3);
    b.records.forEach((r, i) => {
      assert.equal(r.attributes, 0);
      assert.equal(r.timestampDelta, 0n);
      assert.equal(r.offsetDelta, i);
      assert.equal(r.key, null);
      assert.deepEqual(Buffer.from(r.value), Buffer.from(records[i]?.value as Uint8Array));
      assert.deepEqual(
        r.headers.map(([k, v]) => [Buffer.from(k).toString(), Buffer.from(v).toString()]),
        (records[i]?.headers ?? []).map(([k, v]) => [Buffer.from(k).toString(), Buffer.from(v).toString()]),
      );
    });
  });

  it('size varints right at their boundaries (1, 2, 3 and 4 bytes), with nothing left over', () => {
    for (const len of [63, 64, 65, 8191, 8192, 1_048_575, 1_048_576]) {
      const value = Buffer.alloc(len, len % 251);
      const buf = encodeRecordBatch([{ value }, { value: Buffer.from([1]) }], params);
      const b = decode(buf);
      assert.equal(b.records[0]?.value.length, len, `value of ${len} bytes`);
      assert.ok(Buffer.from(b.records[0]?.value as Buffer).equals(value));
      assert.deepEqual([...(b.records[1]?.value as Buffer)], [1]);
      assert.equal(b.length + 12, buf.length, `batch length for ${len}`);
    }
  });

  it('many records: offset deltas past one varint byte, CRC equal to the library’s', () => {
    const records = Array.from({ length: 300 }, (_, i) => ({ value: Buffer.from(`event ${i}`) }));
    const buf = encodeRecordBatch(records, { ...params, crc32c });
    const b = decode(buf);
    assert.equal(b.crc, crc32cBitwise(buf.subarray(21)));
    assert.deepEqual(
      b.records.map((r) => [r.offsetDelta, Buffer.from(r.value).toString()]),
      records.map((r, i) => [i, r.value.toString()]),
    );
  });

  it('compress the records block and flag the codec in the attributes', () => {
    const algo = compressionsAlgorithms.gzip;
    const records = Array.from({ length: 50 }, (_, i) => ({ value: Buffer.from(`repeated payload ${i % 3} `.repeat(20)) }));
    const buf = encodeRecordBatch(records, { ...params, compression: { bitmask: algo.bitmask, compress: (r) => algo.compressSync(r) } });
    const plain = encodeRecordBatch(records, params);
    assert.ok(buf.length < plain.length / 3, `compressed ${buf.length} vs ${plain.length} bytes`);
    const b = decode(buf);
    assert.equal(b.attributes & 0b111, algo.bitmask);
    assert.equal(b.crc, crc32cBitwise(buf.subarray(21)));
    assert.equal(b.length, buf.length - 12);
    assert.deepEqual(
      b.records.map((r) => Buffer.from(r.value).toString()),
      records.map((r) => r.value.toString()),
    );
    assert.ok(buf.length > BATCH_HEADER_SIZE);
  });

  it('write a value given as segments exactly like the same value whole', () => {
    const parts = [Buffer.from('head-'), Buffer.alloc(0), Buffer.alloc(100, 7), Buffer.from('-tail')];
    const segmented = encodeRecordBatch([{ value: parts }, { value: [Buffer.from('x')] }], params);
    const whole = encodeRecordBatch([{ value: Buffer.concat(parts) }, { value: Buffer.from('x') }], params);
    assert.ok(segmented.equals(whole));
    assert.deepEqual(Buffer.from(decode(segmented).records[0]?.value as Buffer), Buffer.concat(parts));
  });

  it('octopus runs over a producer batch encode exactly like whole values, staged or not, sliced, plain and compressed', () => {
    // 5 events; metadata records in two chunks (records never span chunks); data on some events, Kafka headers on one
    const recs = ['{"a":1}', '{"bb":22}', '{"ccc":333}', '{}', '{"e":"five"}'].map((t) => Buffer.from(t));
    const chunks = [Buffer.concat(recs.slice(0, 2)), Buffer.concat(recs.slice(2))];
    let end = 0;
    const batch = {
      count: 5,
      metadata: chunks,
      metadataSize: chunks[0]!.length + chunks[1]!.length,
      metadataEnds: recs.map((r) => (end += r.length)),
      data: [DataSegments.EMPTY, new DataSegments([Buffer.from('xy'), Buffer.alloc(300, 9)]), DataSegments.EMPTY, new DataSegments(Buffer.from('z')), DataSegments.EMPTY],
      headers: undefined,
    };
    const kafkaHeaders = [undefined, undefined, [[Buffer.from('k'), Buffer.from('v')]] as [Buffer, Buffer][], undefined, undefined];
    const whole: BatchRecord[] = recs.map((r, i) => ({ value: encodeValue(r, batch.data[i]!.segments), headers: kafkaHeaders[i] }));
    const run = new OctopusRun(batch, 0, 5, kafkaHeaders);
    const gzip = compressionsAlgorithms.gzip;
    const compressed = { ...params, compression: { bitmask: gzip.bitmask, compress: (r: Buffer) => gzip.compressSync(r) } };
    for (const p of [params, compressed]) {
      assert.ok(encodeRuns([run], p).equals(encodeRecordBatch(whole, p)));
      // a slice across the chunk boundary, and two runs of one partition in one batch
      assert.ok(encodeRuns([run.slice(1, 4)], p).equals(encodeRecordBatch(whole.slice(1, 4), p)));
      assert.ok(encodeRuns([run.slice(0, 2), run.slice(2, 5)], p).equals(encodeRecordBatch(whole, p)));
    }
    // values written without staging (e.g. one buffer per value) are the same bytes
    for (let i = 0; i < 5; i++) {
      const v = Buffer.alloc(run.valueLength(i));
      run.slice(0, 5).writeValue(i, v, 0);
      assert.ok(v.equals(whole[i]!.value as Buffer), `value ${i}`);
    }
  });

  it('refuse an empty batch', () => {
    assert.throws(() => encodeRecordBatch([], params), /at least one record/);
  });

  it('sequences advance by the record count and wrap after 2^31 - 1', () => {
    assert.equal(nextSequence(0, 5), 5);
    assert.equal(nextSequence(0x7fff_fffe, 1), 0x7fff_ffff);
    assert.equal(nextSequence(0x7fff_ffff, 1), 0);
    assert.equal(nextSequence(0x7fff_fff0, 0x20), 0x10);
  });

  describe('decoding', () => {
    const inflate = (bitmask: number, bytes: Buffer): Buffer => {
      const algo = Object.values(compressionsAlgorithms).find((a) => a.bitmask === bitmask);
      assert.ok(algo !== undefined, `codec ${bitmask}`);
      return algo.decompressSync(bytes);
    };

    it('decodes what the encoder wrote: batches back to back, values, headers, offsets, timestamps, producer', () => {
      const a = encodeRecordBatch([{ value: Buffer.from('a0') }, { value: Buffer.alloc(300, 1), headers: [[Buffer.from('k'), Buffer.from('v')]] }], params);
      const b = encodeRecordBatch([{ value: Buffer.from('b0') }], { ...params, producerId: 7n, timestamp: 5n });
      b.writeBigInt64BE(2n, 0); // base offset assigned by a broker
      const batches = decodeRecordBatches(Buffer.concat([a, b]), inflate);
      assert.equal(batches.length, 2);
      const [x, y] = batches;
      assert.deepEqual([x?.firstOffset, x?.lastOffsetDelta, x?.firstTimestamp, x?.producerId, x?.transactional, x?.control], [0n, 1, params.timestamp, 4242n, false, false]);
      assert.deepEqual(
        x?.records.map((r) => [r.offsetDelta, r.value?.length, r.headers.map(([k, v]) => [k?.toString(), v?.toString()])]),
        [
          [0, 2, []],
          [1, 300, [['k', 'v']]],
        ],
      );
      assert.deepEqual([y?.firstOffset, y?.producerId, y?.firstTimestamp, y?.records[0]?.value?.toString()], [2n, 7n, 5n, 'b0']);
    });

    it('decodes a compressed batch', () => {
      const algo = compressionsAlgorithms.gzip;
      const records = Array.from({ length: 40 }, (_, i) => ({ value: Buffer.from(`value ${i} `.repeat(10)) }));
      const buf = encodeRecordBatch(records, { ...params, compression: { bitmask: algo.bitmask, compress: (r) => algo.compressSync(r) } });
      const [batch] = decodeRecordBatches(buf, inflate);
      assert.deepEqual(
        batch?.records.map((r) => r.value?.toString()),
        records.map((r) => r.value.toString()),
      );
    });

    it('leaves out a partial batch at the end (brokers cut responses at the size limit)', () => {
      const a = encodeRecordBatch([{ value: Buffer.from('whole') }], params);
      const b = encodeRecordBatch([{ value: Buffer.alloc(500, 2) }], params);
      for (const cut of [1, 12, BATCH_HEADER_SIZE, b.length - 1]) {
        const batches = decodeRecordBatches(Buffer.concat([a, b.subarray(0, cut)]), inflate);
        assert.equal(batches.length, 1, `cut at ${cut}`);
        assert.equal(batches[0]?.records[0]?.value?.toString(), 'whole');
      }
    });

    it('reads what the library encodes: keys, null values, null header values, negative timestamp deltas, flags', () => {
      // a batch with every field the encoder above never writes, built by the library's own encoder
      const messages = [
        { key: Buffer.from('key'), value: null, headers: new Map([[Buffer.from('h'), null]]), topic: 't', partition: 0, timestamp: 1000n },
        { key: null, value: Buffer.from('v'), headers: new Map(), topic: 't', partition: 0, timestamp: 990n },
      ];
      const encoded = createRecordsBatch(messages as never, { transactionalId: 'tx', producerId: 3n, producerEpoch: 1 } as never);
      const [batch] = decodeRecordBatches((encoded as unknown as { buffer: Buffer }).buffer, inflate);
      assert.equal(batch?.transactional, true);
      assert.equal(batch?.control, false);
      assert.equal(batch?.producerId, 3n);
      assert.deepEqual(
        batch?.records.map((r) => [r.offsetDelta, r.value?.toString() ?? null, r.headers.map(([k, v]) => [k?.toString(), v])]),
        [
          [0, null, [['h', null]]],
          [1, 'v', []],
        ],
      );
    });

    it('refuses the old message formats (magic 0 and 1) with a clear error', () => {
      const buf = encodeRecordBatch([{ value: Buffer.from('x') }], params);
      buf[16] = 1;
      assert.throws(() => decodeRecordBatches(buf, inflate), /unsupported record batch format \(magic 1\)/);
    });
  });
});
