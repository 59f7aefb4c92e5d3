/** The octopus record value layout (kafka-octopus.md §5): golden bytes, end marker, size checks. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BufferOutputArchive } from '../../../src/api/archive.js';
import { DefaultSerializer } from '../../../src/api/components.js';
import { Metadata } from '../../../src/api/metadata.js';
import {
  decodeValue,
  encodeValue,
  endOfStreamValue,
  MalformedRecord,
  SIZE_MISMATCH,
  SIZE_TOO_SMALL,
} from '../../../src/drivers/kafka/record-layout.js';

/** The example of §5: metadata {"x":1}, data "hi". */
const GOLDEN = Buffer.from(
  '0f00000000000000' + '0200000000000000' + '0700000000000000' + Buffer.from('{"x":1}').toString('hex') + Buffer.from('hi').toString('hex'),
  'hex',
);

function defaultRecord(md: Metadata): Buffer {
  const out = new BufferOutputArchive();
  new DefaultSerializer().serialize(out, md);
  return out.toBuffer();
}

describe('kafka record layout', () => {
  it('encodes the golden example of §5 (33 bytes)', { timeout: 5000 }, () => {
    const v = encodeValue(defaultRecord(new Metadata({ x: 1 })), [Buffer.from('h'), Buffer.from('i')]);
    assert.equal(v.length, 33);
    assert.equal(v.toString('hex'), GOLDEN.toString('hex'));
  });

  it('decodes the golden example', { timeout: 5000 }, () => {
    const d = decodeValue(GOLDEN);
    assert.deepEqual(d, { kind: 'event', metadataStart: 16, metadataSize: 15, dataStart: 31, dataSize: 2 });
  });

  it('encodes and decodes an event without data', { timeout: 5000 }, () => {
    const v = encodeValue(defaultRecord(new Metadata({ x: 1 })), []);
    assert.equal(v.toString('hex'), '0f00000000000000' + '0000000000000000' + '0700000000000000' + Buffer.from('{"x":1}').toString('hex'));
    assert.deepEqual(decodeValue(v), { kind: 'event', metadataStart: 16, metadataSize: 15, dataStart: 31, dataSize: 0 });
  });

  it('the end-of-stream marker is 16 bytes of 0xff', { timeout: 5000 }, () => {
    const m = endOfStreamValue();
    assert.equal(m.toString('hex'), 'ff'.repeat(16));
    assert.deepEqual(decodeValue(m), { kind: 'end' });
    // the marker sizes followed by bytes do not match: malformed, not an end marker
    assert.throws(() => decodeValue(Buffer.concat([m, Buffer.from('x')])), (e: unknown) => e instanceof MalformedRecord && e.message === SIZE_MISMATCH);
  });

  it('size checks carry the octopus texts', { timeout: 5000 }, () => {
    for (const v of [null, Buffer.alloc(0), Buffer.alloc(15)]) {
      assert.throws(() => decodeValue(v), (e: unknown) => e instanceof MalformedRecord && e.message === SIZE_TOO_SMALL);
    }
    assert.equal(SIZE_TOO_SMALL, 'Unexpected message size received (payload < 2*sizeof(size_t))');
    assert.equal(SIZE_MISMATCH, "Unexpected message size received (payload size doesn't match declared metadata size and data size)");
    assert.throws(() => decodeValue(GOLDEN.subarray(0, 32)), (e: unknown) => e instanceof MalformedRecord && e.message === SIZE_MISMATCH);
    // sizes whose sum overflows 64 bits must not wrap around to the real length
    const huge = Buffer.alloc(33);
    huge.writeBigUInt64LE(0xffff_ffff_ffff_fff0n, 0);
    huge.writeBigUInt64LE(0x21n, 8); // 16 + M + D ≡ 33 (mod 2^64)
    assert.throws(() => decodeValue(huge), (e: unknown) => e instanceof MalformedRecord && e.message === SIZE_MISMATCH);
    // a size whose low 32 bits match but which has high bits set is a mismatch too (no 32-bit wrap)
    const high = Buffer.alloc(17);
    high.writeBigUInt64LE(0x1_0000_0001n, 0);
    assert.throws(() => decodeValue(high), (e: unknown) => e instanceof MalformedRecord && e.message === SIZE_MISMATCH);
    const highData = Buffer.alloc(17);
    highData.writeBigUInt64LE(0x1_0000_0001n, 8);
    assert.throws(() => decodeValue(highData), (e: unknown) => e instanceof MalformedRecord && e.message === SIZE_MISMATCH);
    // only all 16 bytes 0xff are the marker
    const almost = endOfStreamValue();
    almost[15] = 0xfe;
    assert.throws(() => decodeValue(almost), (e: unknown) => e instanceof MalformedRecord && e.message === SIZE_MISMATCH);
  });
});
