/** Byte-store little-endian writers against Buffer's own encoders. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeU32LE, writeU64LE } from '../../../src/drivers/common/little-endian.js';

describe('little-endian writers', () => {
  it('u32 and u64 (up to 2^53 - 1) like writeUInt32LE / writeBigUInt64LE', () => {
    for (const v of [0, 1, 0xff, 0x1234_5678, 0xffff_ffff]) {
      const a = Buffer.alloc(6, 0xaa);
      const b = Buffer.alloc(6, 0xaa);
      writeU32LE(a, 1, v);
      b.writeUInt32LE(v, 1);
      assert.deepEqual(a, b, `u32 ${v}`);
    }
    for (const v of [0, 1, 0xffff_ffff, 0x1_0000_0000, 0x1234_5678_9abc, Number.MAX_SAFE_INTEGER]) {
      const a = Buffer.alloc(10, 0xaa);
      const b = Buffer.alloc(10, 0xaa);
      writeU64LE(a, 1, v);
      b.writeBigUInt64LE(BigInt(v), 1);
      assert.deepEqual(a, b, `u64 ${v}`);
    }
  });
});
