import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DataDescriptor } from '../../src/api/data-descriptor.js';
import { DiasporaError, ErrorCodes } from '../../src/api/errors.js';

const STRIDED_OOB = 'Invalid strided view: would go out of bounds';
const UNSTRUCTURED_OVERLAP = 'Invalid unstructured view: segments overlapping or out of order';
const UNSTRUCTURED_OOB = 'Invalid unstructured view: would go out of bounds';

function dataError(message: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof DiasporaError, 'expected a DiasporaError');
    assert.equal(e.message, message);
    assert.equal(e.code, ErrorCodes.DATA);
    assert.equal(e.name, 'DiasporaError');
    return true;
  };
}

function assertEmpty(d: DataDescriptor): void {
  assert.equal(d.location, '');
  assert.equal(d.size, 0);
  assert.equal(d.baseSize, 0);
  assert.deepEqual(d.selections, []);
  assert.deepEqual(d.flatten(), [{ offset: 0, size: 0 }]);
}

const base = (): DataDescriptor => new DataDescriptor('loc', 100);

describe('DataDescriptor construction', () => {
  it('defaults to the empty descriptor, which flattens to [(0,0)]', () => {
    assertEmpty(new DataDescriptor());
  });

  it('(loc, n) has size = baseSize = n and no selections', () => {
    const d = base();
    assert.equal(d.location, 'loc');
    assert.equal(d.size, 100);
    assert.equal(d.baseSize, 100);
    assert.deepEqual(d.selections, []);
    assert.deepEqual(d.flatten(), [{ offset: 0, size: 100 }]);
  });

  it('rejects a negative or fractional size', () => {
    const isArg = (e: unknown) => e instanceof DiasporaError && e.code === ErrorCodes.INVALID_ARGUMENT;
    assert.throws(() => new DataDescriptor('', -1), isArg);
    assert.throws(() => new DataDescriptor('', 1.5), isArg);
  });
});

describe('makeSubView', () => {
  it('selects a contiguous range', () => {
    const d = base().makeSubView(20, 30);
    assert.equal(d.size, 30);
    assert.equal(d.baseSize, 100);
    assert.equal(d.location, 'loc');
    assert.deepEqual(d.selections, [{ kind: 'contiguous', offset: 20, size: 30 }]);
    assert.deepEqual(d.flatten(), [{ offset: 20, size: 30 }]);
  });

  it('clamps the size to the end of the view: min(n, S - o)', () => {
    const d = base().makeSubView(90, 50);
    assert.equal(d.size, 10);
    assert.deepEqual(d.flatten(), [{ offset: 90, size: 10 }]);
  });

  it('returns the empty descriptor when o > S, n == 0 or S == 0', () => {
    assertEmpty(base().makeSubView(101, 1));
    assertEmpty(base().makeSubView(10, 0));
    assertEmpty(new DataDescriptor('x', 0).makeSubView(0, 5));
  });

  it('o == S gives a descriptor of size 0 that flattens to nothing', () => {
    const d = base().makeSubView(100, 5);
    assert.equal(d.size, 0);
    assert.equal(d.location, 'loc');
    assert.equal(d.baseSize, 100);
    assert.deepEqual(d.selections, [{ kind: 'contiguous', offset: 100, size: 0 }]);
    assert.deepEqual(d.flatten(), []);
  });

  it('offsets are relative to the view (example: sub(20,30).sub(5,10) → [(25,10)])', () => {
    const d = base().makeSubView(20, 30).makeSubView(5, 10);
    assert.equal(d.size, 10);
    assert.deepEqual(d.flatten(), [{ offset: 25, size: 10 }]);
  });

  it('bounds are those of the view, not of the base', () => {
    const v = base().makeSubView(20, 30);
    assertEmpty(v.makeSubView(31, 1));
    const clamped = v.makeSubView(25, 100);
    assert.equal(clamped.size, 5);
    assert.deepEqual(clamped.flatten(), [{ offset: 45, size: 5 }]);
  });

  it('does not modify the descriptor it is called on', () => {
    const v = base().makeSubView(20, 30);
    v.makeSubView(1, 2);
    assert.equal(v.size, 30);
    assert.equal(v.selections.length, 1);
  });

  it('rejects invalid arguments', () => {
    const isArg = (e: unknown) => e instanceof DiasporaError && e.code === ErrorCodes.INVALID_ARGUMENT;
    assert.throws(() => base().makeSubView(-1, 2), isArg);
    assert.throws(() => base().makeSubView(1, Number.NaN), isArg);
  });
});

describe('makeStridedView', () => {
  it('example: strided(90,2,2,6) → [(90,2),(98,2)] (trailing gap past the end is accepted)', () => {
    const d = base().makeStridedView(90, 2, 2, 6);
    assert.equal(d.size, 4);
    assert.deepEqual(d.selections, [{ kind: 'strided', offset: 90, numBlocks: 2, blockSize: 2, gapSize: 6 }]);
    assert.deepEqual(d.flatten(), [
      { offset: 90, size: 2 },
      { offset: 98, size: 2 },
    ]);
  });

  it('example: sub(20,30).strided(0,3,2,8) → size 6, [(20,2),(30,2),(40,2)]', () => {
    const d = base().makeSubView(20, 30).makeStridedView(0, 3, 2, 8);
    assert.equal(d.size, 6);
    assert.deepEqual(d.flatten(), [
      { offset: 20, size: 2 },
      { offset: 30, size: 2 },
      { offset: 40, size: 2 },
    ]);
  });

  it('size is numBlocks × blockSize', () => {
    assert.equal(base().makeStridedView(1, 4, 3, 7).size, 12);
  });

  it('throws when the last block passes the end', () => {
    assert.throws(() => base().makeStridedView(90, 2, 2, 7), dataError(STRIDED_OOB));
    assert.throws(() => base().makeStridedView(0, 1, 101, 0), dataError(STRIDED_OOB));
    assert.throws(() => base().makeStridedView(100, 1, 1, 0), dataError(STRIDED_OOB));
    // exactly reaching the end is fine
    assert.deepEqual(base().makeStridedView(0, 1, 100, 0).flatten(), [{ offset: 0, size: 100 }]);
  });

  it('checks bounds against the view it is called on', () => {
    const v = base().makeSubView(20, 30);
    assert.throws(() => v.makeStridedView(0, 4, 10, 0), dataError(STRIDED_OOB));
    assert.deepEqual(v.makeStridedView(0, 3, 10, 0).flatten(), [{ offset: 20, size: 30 }]);
  });

  it('returns the empty descriptor when o > S, k == 0 or b == 0', () => {
    assertEmpty(base().makeStridedView(101, 1, 1, 0));
    assertEmpty(base().makeStridedView(0, 0, 1, 0));
    assertEmpty(base().makeStridedView(0, 3, 0, 5));
  });

  it('merges adjacent blocks when the gap is 0', () => {
    const d = base().makeStridedView(10, 3, 5, 0);
    assert.equal(d.size, 15);
    assert.deepEqual(d.flatten(), [{ offset: 10, size: 15 }]);
    const nested = base().makeSubView(10, 20).makeStridedView(0, 4, 5, 0);
    assert.deepEqual(nested.flatten(), [{ offset: 10, size: 20 }]);
  });
});

describe('makeUnstructuredView', () => {
  it('returns the empty descriptor for an empty list or all sizes 0', () => {
    assertEmpty(base().makeUnstructuredView([]));
    assertEmpty(
      base().makeUnstructuredView([
        { offset: 3, size: 0 },
        { offset: 7, size: 0 },
      ]),
    );
  });

  it('keeps separate segments, size = sum of sizes', () => {
    const d = base().makeUnstructuredView([
      { offset: 10, size: 5 },
      { offset: 30, size: 10 },
      { offset: 60, size: 1 },
    ]);
    assert.equal(d.size, 16);
    assert.deepEqual(d.selections, [
      {
        kind: 'unstructured',
        segments: [
          { offset: 10, size: 5 },
          { offset: 30, size: 10 },
          { offset: 60, size: 1 },
        ],
      },
    ]);
    assert.deepEqual(d.flatten(), [
      { offset: 10, size: 5 },
      { offset: 30, size: 10 },
      { offset: 60, size: 1 },
    ]);
  });

  it('merges adjacent segments and drops zero-size ones', () => {
    const d = base().makeUnstructuredView([
      { offset: 10, size: 5 },
      { offset: 15, size: 5 },
      { offset: 22, size: 0 },
      { offset: 30, size: 10 },
    ]);
    assert.equal(d.size, 20);
    assert.deepEqual(d.selections, [
      {
        kind: 'unstructured',
        segments: [
          { offset: 10, size: 10 },
          { offset: 30, size: 10 },
        ],
      },
    ]);
    assert.deepEqual(d.flatten(), [
      { offset: 10, size: 10 },
      { offset: 30, size: 10 },
    ]);
  });

  it('ignores zero-size segments entirely (they are neither ordered nor bounds-checked)', () => {
    const d = base().makeUnstructuredView([
      { offset: 10, size: 5 },
      { offset: 12, size: 0 },
      { offset: 150, size: 0 },
      { offset: 20, size: 1 },
      { offset: 30, size: 2 },
    ]);
    assert.deepEqual(d.flatten(), [
      { offset: 10, size: 5 },
      { offset: 20, size: 1 },
      { offset: 30, size: 2 },
    ]);
    assertEmpty(base().makeUnstructuredView([{ offset: 150, size: 0 }]));
  });

  it('a single remaining segment gives makeSubView of it', () => {
    const d = base().makeUnstructuredView([
      { offset: 10, size: 5 },
      { offset: 15, size: 5 },
    ]);
    assert.deepEqual(d.selections, [{ kind: 'contiguous', offset: 10, size: 10 }]);
    assert.equal(d.size, 10);
    const one = base().makeUnstructuredView([
      { offset: 5, size: 0 },
      { offset: 40, size: 3 },
    ]);
    assert.deepEqual(one.selections, [{ kind: 'contiguous', offset: 40, size: 3 }]);
    assert.deepEqual(one.flatten(), [{ offset: 40, size: 3 }]);
  });

  it('throws on overlapping or out-of-order segments', () => {
    assert.throws(
      () =>
        base().makeUnstructuredView([
          { offset: 10, size: 5 },
          { offset: 14, size: 2 },
        ]),
      dataError(UNSTRUCTURED_OVERLAP),
    );
    assert.throws(
      () =>
        base().makeUnstructuredView([
          { offset: 50, size: 5 },
          { offset: 10, size: 2 },
        ]),
      dataError(UNSTRUCTURED_OVERLAP),
    );
  });

  it('throws when a segment starts at/after the end or passes it', () => {
    assert.throws(() => base().makeUnstructuredView([{ offset: 100, size: 1 }]), dataError(UNSTRUCTURED_OOB));
    assert.throws(() => base().makeUnstructuredView([{ offset: 95, size: 6 }]), dataError(UNSTRUCTURED_OOB));
    assert.throws(
      () =>
        base().makeUnstructuredView([
          { offset: 0, size: 1 },
          { offset: 99, size: 2 },
        ]),
      dataError(UNSTRUCTURED_OOB),
    );
    // a segment that exactly reaches the end is fine
    assert.deepEqual(base().makeUnstructuredView([{ offset: 95, size: 5 }]).flatten(), [{ offset: 95, size: 5 }]);
  });

  it('is relative to the view and bounded by it', () => {
    const v = base().makeSubView(20, 30);
    const d = v.makeUnstructuredView([
      { offset: 0, size: 2 },
      { offset: 10, size: 3 },
    ]);
    assert.equal(d.size, 5);
    assert.deepEqual(d.flatten(), [
      { offset: 20, size: 2 },
      { offset: 30, size: 3 },
    ]);
    assert.throws(() => v.makeUnstructuredView([{ offset: 30, size: 1 }]), dataError(UNSTRUCTURED_OOB));
    assert.throws(() => v.makeUnstructuredView([{ offset: 25, size: 6 }]), dataError(UNSTRUCTURED_OOB));
  });
});

describe('flatten with nested views', () => {
  it('maps a sub view through strided extents, splitting across them', () => {
    // strided(0,5,4,6): extents (0,4) (10,4) (20,4) (30,4) (40,4), logical size 20
    const s = base().makeStridedView(0, 5, 4, 6);
    assert.equal(s.size, 20);
    const sub = s.makeSubView(2, 8); // logical [2,10)
    assert.equal(sub.size, 8);
    assert.deepEqual(sub.flatten(), [
      { offset: 2, size: 2 },
      { offset: 10, size: 4 },
      { offset: 20, size: 2 },
    ]);
    // logical stream of `sub`: abs 2,3,10,11,12,13,20,21
    const u = sub.makeUnstructuredView([
      { offset: 1, size: 2 },
      { offset: 5, size: 3 },
    ]);
    assert.equal(u.size, 5);
    assert.deepEqual(u.flatten(), [
      { offset: 3, size: 1 },
      { offset: 10, size: 1 },
      { offset: 13, size: 1 },
      { offset: 20, size: 2 },
    ]);
    assert.equal(u.selections.length, 3);
  });

  it('strided of strided', () => {
    // outer: blocks of 10 every 20 → abs [0,10) [20,30) [40,50) [60,70); logical size 40
    const outer = base().makeStridedView(0, 4, 10, 10);
    // inner on the logical stream: blocks of 4 every 8 starting at 3 → logical [3,7) [11,15) [19,23) [27,31)
    const inner = outer.makeStridedView(3, 4, 4, 4);
    assert.equal(inner.size, 16);
    assert.deepEqual(inner.flatten(), expectedStridedOfStrided());
  });

  it('unstructured then sub, then sub of size 0 at the end', () => {
    const u = base().makeUnstructuredView([
      { offset: 5, size: 5 },
      { offset: 50, size: 5 },
    ]);
    const s = u.makeSubView(3, 4); // logical [3,7) → abs 8,9,50,51
    assert.deepEqual(s.flatten(), [
      { offset: 8, size: 2 },
      { offset: 50, size: 2 },
    ]);
    const end = s.makeSubView(4, 1);
    assert.equal(end.size, 0);
    assert.deepEqual(end.flatten(), []);
  });

  it('returns a fresh array each call', () => {
    const d = base().makeSubView(1, 2);
    const a = d.flatten();
    a[0].size = 99;
    a.push({ offset: 0, size: 1 });
    assert.deepEqual(d.flatten(), [{ offset: 1, size: 2 }]);
    const n = base();
    n.flatten()[0].offset = 5;
    assert.deepEqual(n.flatten(), [{ offset: 0, size: 100 }]);
  });
});

/** Computed by hand: logical→absolute map of outer is l<10: l; l<20: l+10; l<30: l+20; l<40: l+30. */
function expectedStridedOfStrided(): { offset: number; size: number }[] {
  // [3,7) → [3,7); [11,15) → [21,25); [19,23) → 19 → 29, 20..22 → 40..42 ⇒ (29,1) (40,3);
  // [27,31) → 27..29 → 47..49, 30 → 60 ⇒ (47,3) (60,1)
  return [
    { offset: 3, size: 4 },
    { offset: 21, size: 4 },
    { offset: 29, size: 1 },
    { offset: 40, size: 3 },
    { offset: 47, size: 3 },
    { offset: 60, size: 1 },
  ];
}

describe('save / load', () => {
  it('writes the documented u64 LE layout', () => {
    const d = new DataDescriptor('ab', 10).makeSubView(2, 5);
    const bytes = d.save();
    const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
    const u64 = (n: number) => Buffer.from(new BigUint64Array([BigInt(n)]).buffer).toString('hex');
    assert.equal(
      hex,
      u64(5) + u64(10) + u64(2) + '6162' + u64(1) + '01' + u64(2) + u64(5),
    );
    assert.equal(bytes.length, 51);
  });

  it('encodes strided and unstructured selections with tags 2 and 3', () => {
    const d = new DataDescriptor('', 100)
      .makeStridedView(1, 2, 3, 4)
      .makeUnstructuredView([
        { offset: 0, size: 1 },
        { offset: 4, size: 2 },
      ]);
    const b = Buffer.from(d.save());
    const u64 = (n: number) => Buffer.from(new BigUint64Array([BigInt(n)]).buffer).toString('hex');
    assert.equal(
      b.toString('hex'),
      u64(3) + u64(100) + u64(0) + u64(2) + '02' + u64(1) + u64(2) + u64(3) + u64(4) + '03' + u64(2) + u64(0) + u64(1) + u64(4) + u64(2),
    );
  });

  it('round-trips nested descriptors', () => {
    const d = new DataDescriptor('file:é/☃', 100)
      .makeStridedView(0, 5, 4, 6)
      .makeSubView(2, 8)
      .makeUnstructuredView([
        { offset: 1, size: 2 },
        { offset: 5, size: 3 },
      ]);
    const l = DataDescriptor.load(d.save());
    assert.equal(l.location, 'file:é/☃');
    assert.equal(l.size, 5);
    assert.equal(l.baseSize, 100);
    assert.deepEqual(l.selections, d.selections);
    assert.deepEqual(l.flatten(), d.flatten());
  });

  it('round-trips the empty descriptor and a size-0 view', () => {
    const e = DataDescriptor.load(new DataDescriptor().save());
    assertEmpty(e);
    const z = DataDescriptor.load(base().makeSubView(100, 1).save());
    assert.equal(z.size, 0);
    assert.deepEqual(z.flatten(), []);
  });

  it('loads from a Uint8Array view with a non-zero byteOffset', () => {
    const saved = base().makeSubView(3, 4).save();
    const big = new Uint8Array(saved.length + 7);
    big.set(saved, 7);
    const l = DataDescriptor.load(big.subarray(7));
    assert.deepEqual(l.flatten(), [{ offset: 3, size: 4 }]);
    assert.equal(l.location, 'loc');
  });

  it('rejects malformed input', () => {
    const good = Buffer.from(base().makeSubView(3, 4).save());
    const isData = (prefix: string) => (e: unknown) =>
      e instanceof DiasporaError && e.code === ErrorCodes.DATA && e.message.startsWith(prefix);
    assert.throws(() => DataDescriptor.load(good.subarray(0, good.length - 1)), isData('Invalid DataDescriptor encoding: truncated'));
    assert.throws(() => DataDescriptor.load(Buffer.concat([good, Buffer.from([0])])), isData('Invalid DataDescriptor encoding: trailing'));
    const badTag = Buffer.from(good);
    badTag[8 * 4 + 3] = 9; // tag after size, baseSize, len, "loc", count
    assert.throws(() => DataDescriptor.load(badTag), isData('Invalid DataDescriptor encoding: unknown selection tag 9'));
    const badSize = Buffer.from(good);
    badSize[0] = 5; // size 5 but the selection gives 4
    assert.throws(() => DataDescriptor.load(badSize), isData('Invalid DataDescriptor encoding: size does not match'));
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(1n << 60n, 8);
    assert.throws(() => DataDescriptor.load(huge), isData('Invalid DataDescriptor encoding: value too large'));
  });

  it('rejects selections that do not fit their view', () => {
    // base 10, strided offset 8, 2 blocks of 2, gap 0 → passes the end
    const u64 = (n: number) => Buffer.from(new BigUint64Array([BigInt(n)]).buffer);
    const bytes = Buffer.concat([u64(4), u64(10), u64(0), u64(1), Buffer.from([2]), u64(8), u64(2), u64(2), u64(0)]);
    assert.throws(() => DataDescriptor.load(bytes), dataError(STRIDED_OOB));
  });
});
