import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DataSegments } from '../../src/api/data-segments.js';
import { DiasporaError, ErrorCodes } from '../../src/api/errors.js';

const SENTINEL = 0xee;

/** Segments [1,2,3] [4,5] [] [6,7,8,9] [10] — logical content 1..10. */
function makeSegments(): Uint8Array[] {
  return [
    Uint8Array.from([1, 2, 3]),
    Uint8Array.from([4, 5]),
    new Uint8Array(0),
    Uint8Array.from([6, 7, 8, 9]),
    Uint8Array.from([10]),
  ];
}
const CONTENT = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

function concat(segs: readonly Uint8Array[]): number[] {
  const out: number[] = [];
  for (const s of segs) out.push(...s);
  return out;
}

describe('DataSegments construction', () => {
  it('defaults to no segments and size 0', () => {
    const d = new DataSegments();
    assert.equal(d.size, 0);
    assert.deepEqual(d.segments, []);
    assert.equal(d.toBuffer().length, 0);
  });

  it('EMPTY has size 0 and no segments', () => {
    assert.equal(DataSegments.EMPTY.size, 0);
    assert.equal(DataSegments.EMPTY.segments.length, 0);
    assert.ok(DataSegments.EMPTY instanceof DataSegments);
  });

  it('references a single segment without copying', () => {
    const b = Uint8Array.from([1, 2, 3]);
    const d = new DataSegments(b);
    assert.equal(d.size, 3);
    assert.equal(d.segments.length, 1);
    assert.equal(d.segments[0], b);
  });

  it('sums the lengths of several segments and references each of them', () => {
    const segs = makeSegments();
    const d = new DataSegments(segs);
    assert.equal(d.size, 10);
    assert.equal(d.segments.length, 5);
    for (let i = 0; i < segs.length; i++) assert.equal(d.segments[i], segs[i]);
  });

  it('is not affected by later changes to the caller array', () => {
    const segs = makeSegments();
    const d = new DataSegments(segs);
    segs.push(Uint8Array.from([11, 12]));
    assert.equal(d.size, 10);
    assert.equal(d.segments.length, 5);
  });

  it('rejects non-Uint8Array segments', () => {
    assert.throws(
      () => new DataSegments([Uint8Array.from([1]), 'x' as unknown as Uint8Array]),
      (e: unknown) => e instanceof DiasporaError && e.code === ErrorCodes.INVALID_ARGUMENT,
    );
  });

  it('accepts Buffers (a Uint8Array subclass)', () => {
    const d = new DataSegments([Buffer.from('ab'), Buffer.from('cde')]);
    assert.equal(d.size, 5);
    assert.equal(d.toBuffer().toString(), 'abcde');
  });
});

describe('DataSegments.from', () => {
  it('maps undefined, null and [] to EMPTY', () => {
    assert.equal(DataSegments.from(undefined), DataSegments.EMPTY);
    assert.equal(DataSegments.from(null), DataSegments.EMPTY);
    assert.equal(DataSegments.from([]), DataSegments.EMPTY);
  });

  it('returns a DataSegments unchanged', () => {
    const d = new DataSegments(Uint8Array.from([1]));
    assert.equal(DataSegments.from(d), d);
  });

  it('wraps a Uint8Array and an array of Uint8Array without copying', () => {
    const b = Uint8Array.from([1, 2]);
    const d1 = DataSegments.from(b);
    assert.equal(d1.size, 2);
    assert.equal(d1.segments[0], b);
    const segs = makeSegments();
    const d2 = DataSegments.from(segs);
    assert.equal(d2.size, 10);
    assert.equal(d2.segments[3], segs[3]);
  });
});

describe('DataSegments.read', () => {
  it('reads a whole single segment', () => {
    const d = new DataSegments(Uint8Array.from([1, 2, 3, 4]));
    const dst = new Uint8Array(4);
    assert.equal(d.read(dst, 0), 4);
    assert.deepEqual([...dst], [1, 2, 3, 4]);
  });

  it('reads from an offset inside a single segment without touching the rest of dst', () => {
    const d = new DataSegments(Uint8Array.from([1, 2, 3, 4, 5]));
    const dst = new Uint8Array(6).fill(SENTINEL);
    assert.equal(d.read(dst, 2), 3);
    assert.deepEqual([...dst], [3, 4, 5, SENTINEL, SENTINEL, SENTINEL]);
    const small = new Uint8Array(2);
    assert.equal(d.read(small, 1), 2);
    assert.deepEqual([...small], [2, 3]);
  });

  it('returns 0 and leaves dst untouched at or beyond the end', () => {
    const d = new DataSegments(Uint8Array.from([1, 2, 3]));
    const dst = new Uint8Array(3).fill(SENTINEL);
    assert.equal(d.read(dst, 3), 0);
    assert.equal(d.read(dst, 100), 0);
    assert.deepEqual([...dst], [SENTINEL, SENTINEL, SENTINEL]);
    assert.equal(DataSegments.EMPTY.read(dst, 0), 0);
  });

  it('reads every (offset, length) across several segments exactly', () => {
    const d = new DataSegments(makeSegments());
    for (let offset = 0; offset <= 12; offset++) {
      for (let len = 0; len <= 12; len++) {
        const dst = new Uint8Array(len).fill(SENTINEL);
        const n = d.read(dst, offset);
        const expected = CONTENT.slice(offset, offset + len);
        assert.equal(n, expected.length, `count at offset ${offset} len ${len}`);
        const expectedDst = [...expected, ...new Array<number>(len - expected.length).fill(SENTINEL)];
        assert.deepEqual([...dst], expectedDst, `bytes at offset ${offset} len ${len}`);
      }
    }
  });

  it('reads a span covering three segments', () => {
    const d = new DataSegments(makeSegments());
    const dst = new Uint8Array(6);
    assert.equal(d.read(dst, 2), 6);
    assert.deepEqual([...dst], [3, 4, 5, 6, 7, 8]);
  });

  it('rejects a negative or fractional offset', () => {
    const d = new DataSegments(Uint8Array.from([1]));
    const isArgError = (e: unknown) => e instanceof DiasporaError && e.code === ErrorCodes.INVALID_ARGUMENT;
    assert.throws(() => d.read(new Uint8Array(1), -1), isArgError);
    assert.throws(() => d.read(new Uint8Array(1), 0.5), isArgError);
  });
});

describe('DataSegments.write', () => {
  it('writes into a single segment at an offset without overrunning', () => {
    const b = new Uint8Array(5).fill(SENTINEL);
    const d = new DataSegments(b);
    assert.equal(d.write(Uint8Array.from([1, 2]), 1), 2);
    assert.deepEqual([...b], [SENTINEL, 1, 2, SENTINEL, SENTINEL]);
  });

  it('truncates at the end of the data', () => {
    const b = new Uint8Array(4).fill(SENTINEL);
    const d = new DataSegments(b);
    assert.equal(d.write(Uint8Array.from([1, 2, 3, 4]), 2), 2);
    assert.deepEqual([...b], [SENTINEL, SENTINEL, 1, 2]);
  });

  it('returns 0 and writes nothing at or beyond the end', () => {
    const b = new Uint8Array(2).fill(SENTINEL);
    const d = new DataSegments(b);
    assert.equal(d.write(Uint8Array.from([1]), 2), 0);
    assert.equal(d.write(Uint8Array.from([1]), 50), 0);
    assert.deepEqual([...b], [SENTINEL, SENTINEL]);
  });

  it('writes every (offset, length) across several segments touching only [offset, offset+n)', () => {
    const src = Uint8Array.from([101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112]);
    for (let offset = 0; offset <= 11; offset++) {
      for (let len = 0; len <= 12; len++) {
        const segs = makeSegments().map((s) => new Uint8Array(s.length).fill(SENTINEL));
        const d = new DataSegments(segs);
        const n = d.write(src.subarray(0, len), offset);
        const expectedCount = Math.max(0, Math.min(len, 10 - offset));
        assert.equal(n, expectedCount, `count at offset ${offset} len ${len}`);
        const expected = new Array<number>(10).fill(SENTINEL);
        for (let i = 0; i < expectedCount; i++) expected[offset + i] = src[i];
        assert.deepEqual(concat(segs), expected, `bytes at offset ${offset} len ${len}`);
        // segment lengths unchanged
        assert.deepEqual(
          segs.map((s) => s.length),
          [3, 2, 0, 4, 1],
        );
      }
    }
  });

  it('round-trips write then read across segments', () => {
    const segs = [new Uint8Array(2), new Uint8Array(3), new Uint8Array(2)];
    const d = new DataSegments(segs);
    assert.equal(d.write(Uint8Array.from([9, 8, 7, 6]), 1), 4);
    assert.deepEqual([...segs[0]], [0, 9]);
    assert.deepEqual([...segs[1]], [8, 7, 6]);
    assert.deepEqual([...segs[2]], [0, 0]);
    const dst = new Uint8Array(7);
    assert.equal(d.read(dst, 0), 7);
    assert.deepEqual([...dst], [0, 9, 8, 7, 6, 0, 0]);
  });
});

describe('DataSegments.toBuffer', () => {
  it('returns the same Buffer for a single Buffer segment', () => {
    const b = Buffer.from('hello');
    assert.equal(new DataSegments(b).toBuffer(), b);
  });

  it('returns a view over the same memory for a single Uint8Array segment', () => {
    const backing = Uint8Array.from([0, 1, 2, 3, 4, 5]);
    const seg = backing.subarray(2, 5);
    const buf = new DataSegments(seg).toBuffer();
    assert.ok(Buffer.isBuffer(buf));
    assert.equal(buf.buffer, backing.buffer);
    assert.equal(buf.byteOffset, 2);
    assert.equal(buf.length, 3);
    assert.deepEqual([...buf], [2, 3, 4]);
    buf[0] = 42;
    assert.equal(backing[2], 42);
  });

  it('concatenates several segments into a copy', () => {
    const segs = makeSegments();
    const buf = new DataSegments(segs).toBuffer();
    assert.deepEqual([...buf], CONTENT);
    buf[0] = 99;
    assert.equal(segs[0][0], 1);
  });
});

describe('DataSegments.release', () => {
  it('calls onRelease exactly once', () => {
    let calls = 0;
    const d = new DataSegments(Uint8Array.from([1]), { onRelease: () => calls++ });
    assert.equal(calls, 0);
    d.release();
    assert.equal(calls, 1);
    d.release();
    d.release();
    assert.equal(calls, 1);
  });

  it('is a no-op without onRelease', () => {
    const d = new DataSegments(Uint8Array.from([1]));
    d.release();
    DataSegments.EMPTY.release();
    assert.equal(d.size, 1);
  });
});
