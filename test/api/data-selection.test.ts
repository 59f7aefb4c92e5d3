import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DataDescriptor } from '../../src/api/data-descriptor.js';
import { DataSegments } from '../../src/api/data-segments.js';
import {
  ByteArrayAllocator,
  FullDataSelector,
  NoDataSelector,
  selectData,
  selectDataAsync,
  selectFromBuffer,
  type DataAllocator,
  type DataSelector,
} from '../../src/api/data-selection.js';
import { DiasporaError, ErrorCodes } from '../../src/api/errors.js';
import { Metadata } from '../../src/api/metadata.js';

const INSUFFICIENT = 'DataView has insufficient capacity for descriptor segments';
const SENTINEL = 0xee;

/** 100 bytes of data: byte i = i. */
const DATA = Uint8Array.from({ length: 100 }, (_, i) => i);
const md = new Metadata({ x: 1 });

interface Call {
  abs: number;
  size: number;
  dstIndex: number;
  dstOffset: number;
}

/** A readRange over DATA recording its calls; `dsts` identifies destination segments. */
function recorder(dsts: () => readonly Uint8Array[] = () => []) {
  const calls: Call[] = [];
  const read = (abs: number, size: number, dst: Uint8Array, dstOffset: number): void => {
    calls.push({ abs, size, dstIndex: dsts().indexOf(dst), dstOffset });
    dst.set(DATA.subarray(abs, abs + size), dstOffset);
  };
  return { calls, read };
}

const isInsufficient = (e: unknown): boolean => {
  assert.ok(e instanceof DiasporaError);
  assert.equal(e.message, INSUFFICIENT);
  assert.equal(e.code, ErrorCodes.DATA);
  return true;
};

const strided: DataSelector = (_md, full) => full.makeSubView(20, 30).makeStridedView(0, 3, 2, 8);

describe('selectors and allocators', () => {
  it('FullDataSelector returns the full descriptor itself', () => {
    const full = new DataDescriptor('l', 10);
    assert.equal(FullDataSelector(md, full), full);
  });

  it('NoDataSelector returns null', () => {
    assert.equal(NoDataSelector(md, new DataDescriptor('l', 10)), null);
  });

  it('ByteArrayAllocator returns one Buffer of selected.size bytes', () => {
    const mem = ByteArrayAllocator(md, new DataDescriptor('', 100).makeSubView(10, 17));
    assert.ok(Buffer.isBuffer(mem));
    assert.equal((mem as Buffer).length, 17);
  });
});

describe('selectData', () => {
  it('by default returns the whole data in one fresh buffer, read in one call', () => {
    let mem: Uint8Array | undefined;
    const r = recorder(() => (mem ? [mem] : []));
    const out = selectData(md, 100, '', undefined, undefined, (a, s, d, o) => {
      mem = d;
      r.read(a, s, d, o);
    });
    assert.equal(out.size, 100);
    assert.equal(out.segments.length, 1);
    assert.deepEqual([...out.toBuffer()], [...DATA]);
    assert.deepEqual(r.calls, [{ abs: 0, size: 100, dstIndex: 0, dstOffset: 0 }]);
    assert.notEqual(out.segments[0].buffer, DATA.buffer);
  });

  it('passes md and full(location, dataSize) to the selector, md and selected to the allocator', () => {
    const seen: string[] = [];
    let selectedSeen: DataDescriptor | undefined;
    const selector: DataSelector = (m, full) => {
      assert.equal(m, md);
      seen.push(`${full.location}:${full.size}:${full.baseSize}:${full.selections.length}`);
      return full.makeSubView(1, 3);
    };
    const allocator: DataAllocator = (m, selected) => {
      assert.equal(m, md);
      selectedSeen = selected;
      return new Uint8Array(selected.size);
    };
    const out = selectData(md, 100, 'where', selector, allocator, recorder().read);
    assert.deepEqual(seen, ['where:100:100:0']);
    assert.equal(selectedSeen?.size, 3);
    assert.deepEqual([...out.toBuffer()], [1, 2, 3]);
  });

  for (const [name, selector] of [
    ['null', () => null],
    ['undefined', () => undefined],
    ['a size-0 descriptor', (_m: Metadata, full: DataDescriptor) => full.makeSubView(0, 0)],
    ['a size-0 view at the end', (_m: Metadata, full: DataDescriptor) => full.makeSubView(100, 5)],
    ['NoDataSelector', NoDataSelector],
  ] as [string, DataSelector][]) {
    it(`returns DataSegments.EMPTY without allocating or reading when the selector returns ${name}`, () => {
      let allocs = 0;
      const r = recorder();
      const out = selectData(md, 100, '', selector, () => {
        allocs++;
        return new Uint8Array(100);
      }, r.read);
      assert.equal(out, DataSegments.EMPTY);
      assert.equal(allocs, 0);
      assert.deepEqual(r.calls, []);
    });
  }

  it('returns EMPTY for zero-size data with the default selector', () => {
    const r = recorder();
    assert.equal(selectData(md, 0, '', undefined, undefined, r.read), DataSegments.EMPTY);
    assert.deepEqual(r.calls, []);
  });

  it('copies each flattened range in order (nested strided example)', () => {
    let mem: Uint8Array | undefined;
    const r = recorder(() => (mem ? [mem] : []));
    const out = selectData(md, 100, '', strided, (_m, s) => (mem = new Uint8Array(s.size)), r.read);
    assert.deepEqual([...out.toBuffer()], [20, 21, 30, 31, 40, 41]);
    assert.deepEqual(r.calls, [
      { abs: 20, size: 2, dstIndex: 0, dstOffset: 0 },
      { abs: 30, size: 2, dstIndex: 0, dstOffset: 2 },
      { abs: 40, size: 2, dstIndex: 0, dstOffset: 4 },
    ]);
  });

  it('splits ranges across the segments of a multi-segment allocation', () => {
    // selection: abs [10,15) then [50,57) → 12 bytes; memory: 3 + 0 + 5 + 4 bytes
    const segs = [new Uint8Array(3), new Uint8Array(0), new Uint8Array(5), new Uint8Array(4)];
    const selector: DataSelector = (_m, full) =>
      full.makeUnstructuredView([
        { offset: 10, size: 5 },
        { offset: 50, size: 7 },
      ]);
    const r = recorder(() => segs);
    const out = selectData(md, 100, '', selector, () => segs, r.read);
    assert.equal(out.size, 12);
    assert.deepEqual(out.segments, segs);
    assert.deepEqual([...segs[0]], [10, 11, 12]);
    assert.deepEqual([...segs[2]], [13, 14, 50, 51, 52]);
    assert.deepEqual([...segs[3]], [53, 54, 55, 56]);
    assert.deepEqual(r.calls, [
      { abs: 10, size: 3, dstIndex: 0, dstOffset: 0 },
      { abs: 13, size: 2, dstIndex: 2, dstOffset: 0 },
      { abs: 50, size: 3, dstIndex: 2, dstOffset: 2 },
      { abs: 53, size: 4, dstIndex: 3, dstOffset: 0 },
    ]);
  });

  it('accepts a DataSegments from the allocator and leaves bytes past the selection untouched', () => {
    const a = new Uint8Array(4).fill(SENTINEL);
    const b = new Uint8Array(4).fill(SENTINEL);
    const mem = new DataSegments([a, b]);
    const out = selectData(md, 100, '', (_m, f) => f.makeSubView(90, 5), () => mem, recorder().read);
    assert.equal(out, mem);
    assert.deepEqual([...a], [90, 91, 92, 93]);
    assert.deepEqual([...b], [94, SENTINEL, SENTINEL, SENTINEL]);
  });

  it('throws the insufficient-capacity error and releases the memory when it is too small', () => {
    let released = 0;
    const r = recorder();
    assert.throws(
      () =>
        selectData(
          md,
          100,
          '',
          strided,
          () => new DataSegments([new Uint8Array(2), new Uint8Array(3)], { onRelease: () => released++ }),
          r.read,
        ),
      isInsufficient,
    );
    assert.equal(released, 1);
    assert.deepEqual(r.calls, []);
  });

  it('throws the insufficient-capacity error for a too-small default-shaped allocation', () => {
    assert.throws(() => selectData(md, 100, '', undefined, () => new Uint8Array(99), recorder().read), isInsufficient);
  });

  it('propagates a readRange error and releases the memory', () => {
    let released = 0;
    const boom = new Error('boom');
    assert.throws(
      () =>
        selectData(md, 10, '', undefined, () => new DataSegments(new Uint8Array(10), { onRelease: () => released++ }), () => {
          throw boom;
        }),
      (e: unknown) => e === boom,
    );
    assert.equal(released, 1);
  });

  it('rejects a selected descriptor that goes beyond the data', () => {
    assert.throws(
      () => selectData(md, 100, '', () => new DataDescriptor('', 200).makeSubView(150, 10), undefined, recorder().read),
      (e: unknown) => e instanceof DiasporaError && e.code === ErrorCodes.DATA && /beyond the event data/.test(e.message),
    );
  });
});

describe('selectDataAsync', () => {
  it('reads the pieces one after the other, in order, into multi-segment memory', async () => {
    const segs: Uint8Array[] = [new Uint8Array(5), new Uint8Array(1)];
    const order: string[] = [];
    let inFlight = 0;
    const out = await selectDataAsync(md, 100, '', strided, () => segs, async (abs, size, dst, off) => {
      inFlight++;
      assert.equal(inFlight, 1);
      order.push(`${abs}+${size}->${segs.indexOf(dst)}@${off}`);
      await new Promise((res) => setTimeout(res, 1));
      dst.set(DATA.subarray(abs, abs + size), off);
      inFlight--;
    });
    assert.deepEqual(order, ['20+2->0@0', '30+2->0@2', '40+1->0@4', '41+1->1@0']);
    assert.deepEqual([...segs[0]], [20, 21, 30, 31, 40]);
    assert.deepEqual([...segs[1]], [41]);
    assert.equal(out.size, 6);
  });

  it('defaults to the whole data', async () => {
    const out = await selectDataAsync(md, 100, '', undefined, undefined, async (abs, size, dst, off) => {
      dst.set(DATA.subarray(abs, abs + size), off);
    });
    assert.deepEqual([...out.toBuffer()], [...DATA]);
  });

  it('returns EMPTY when the selector returns null', async () => {
    let reads = 0;
    const out = await selectDataAsync(md, 100, '', () => null, undefined, async () => {
      reads++;
    });
    assert.equal(out, DataSegments.EMPTY);
    assert.equal(reads, 0);
  });

  it('rejects with the insufficient-capacity error', async () => {
    await assert.rejects(
      selectDataAsync(md, 100, '', undefined, () => [new Uint8Array(50)], async () => {}),
      isInsufficient,
    );
  });

  it('rejects with the readRange error and releases the memory', async () => {
    let released = 0;
    await assert.rejects(
      selectDataAsync(md, 10, '', undefined, () => new DataSegments(new Uint8Array(10), { onRelease: () => released++ }), async () => {
        throw new Error('eio');
      }),
      /eio/,
    );
    assert.equal(released, 1);
  });
});

describe('selectFromBuffer', () => {
  it('shares memory (no copy) for the whole data with no allocator', () => {
    const buf = Uint8Array.from(DATA);
    const out = selectFromBuffer(md, buf, undefined, undefined);
    assert.equal(out.size, 100);
    assert.equal(out.segments.length, 1);
    assert.equal(out.segments[0], buf);
    buf[0] = 77;
    assert.equal(out.toBuffer()[0], 77);
  });

  it('shares memory for a single contiguous selection with no allocator', () => {
    const buf = Uint8Array.from(DATA);
    const out = selectFromBuffer(md, buf, (_m, f) => f.makeSubView(10, 5), undefined);
    assert.deepEqual([...out.toBuffer()], [10, 11, 12, 13, 14]);
    assert.equal(out.segments[0].buffer, buf.buffer);
    assert.equal(out.segments[0].byteOffset, buf.byteOffset + 10);
  });

  it('copies a multi-range selection into a fresh buffer', () => {
    const buf = Uint8Array.from(DATA);
    const out = selectFromBuffer(md, buf, strided, undefined);
    assert.deepEqual([...out.toBuffer()], [20, 21, 30, 31, 40, 41]);
    buf[20] = 0;
    assert.equal(out.toBuffer()[0], 20);
  });

  it('copies into the allocated (multi-segment) memory when an allocator is given', () => {
    const buf = Uint8Array.from(DATA);
    const segs = [new Uint8Array(4), new Uint8Array(4)];
    const out = selectFromBuffer(md, buf, (_m, f) => f.makeSubView(96, 4), () => segs);
    assert.deepEqual([...segs[0]], [96, 97, 98, 99]);
    assert.deepEqual([...segs[1]], [0, 0, 0, 0]);
    assert.deepEqual(out.segments, segs);
    const all = selectFromBuffer(md, buf, undefined, (_m, s) => [new Uint8Array(s.size - 1), new Uint8Array(1)]);
    assert.deepEqual([...all.toBuffer()], [...DATA]);
    assert.notEqual(all.segments[0].buffer, buf.buffer);
  });

  it('returns EMPTY for NoDataSelector and for empty data', () => {
    assert.equal(selectFromBuffer(md, DATA, NoDataSelector, undefined), DataSegments.EMPTY);
    assert.equal(selectFromBuffer(md, new Uint8Array(0), undefined, undefined), DataSegments.EMPTY);
  });

  it('throws the insufficient-capacity error', () => {
    assert.throws(() => selectFromBuffer(md, DATA, undefined, () => new Uint8Array(10)), isInsufficient);
  });

  it('passes the location to the selector', () => {
    let loc: string | undefined;
    selectFromBuffer(md, DATA, (_m, f) => ((loc = f.location), f), undefined, 'topic/0');
    assert.equal(loc, 'topic/0');
  });
});

describe('a data selector returning something else than a DataDescriptor', () => {
  for (const [what, value] of [
    ['number', 42],
    ['string', 'all'],
    ['object', { offset: 0, size: 4 }],
  ] as const) {
    it(`${what}: a data error naming what it returned (not a silent skip)`, () => {
      const selector = (() => value) as unknown as DataSelector;
      assert.throws(
        () => selectFromBuffer(md, Buffer.from(DATA), selector, undefined),
        (err: unknown) => err instanceof DiasporaError && err.code === ErrorCodes.DATA && err.message === `The data selector returned ${typeof value}: expected a DataDescriptor, null or undefined`,
      );
    });
  }
});
