/**
 * Data selectors and allocators (api.md §3.3), and the helpers every driver uses to turn an
 * event's stored data into the `DataSegments` a consumer receives:
 *
 *   full = new DataDescriptor(location, dataSize)
 *   selected = selector(md, full)          (default FullDataSelector; null/undefined/size 0 → no data)
 *   memory = allocator(md, selected)       (default ByteArrayAllocator)
 *   copy the bytes of selected.flatten(), in order, into memory (possibly multi-segment)
 */
import { DataDescriptor, type ByteRange } from './data-descriptor.js';
import { DataSegments, type DataLike } from './data-segments.js';
import { DiasporaError, ErrorCodes } from './errors.js';
import type { Metadata } from './metadata.js';

/** Chooses which part of an event's data to fetch; `null`/`undefined`/size 0 means none. */
export type DataSelector = (md: Metadata, full: DataDescriptor) => DataDescriptor | null | undefined;
/** Provides memory of (at least) `selected.size` bytes into which the selected data is copied. */
export type DataAllocator = (md: Metadata, selected: DataDescriptor) => DataLike;

/** Selects the whole data (the default). */
export const FullDataSelector: DataSelector = (_md, full) => full;
/** Selects no data. */
export const NoDataSelector: DataSelector = () => null;
/**
 * One fresh Buffer of `selected.size` bytes (the default). It comes from `Buffer.allocUnsafe`
 * (small sizes may share Node's pool slab), which is fine since it is fully overwritten.
 */
export const ByteArrayAllocator: DataAllocator = (_md, selected) => Buffer.allocUnsafe(selected.size);

export const INSUFFICIENT_CAPACITY = 'DataView has insufficient capacity for descriptor segments';

/** Copies `size` bytes of the event data at `absOffset` into `dst[dstOffset …]`. */
export type ReadRange = (absOffset: number, size: number, dst: Uint8Array, dstOffset: number) => void;
/** Asynchronous {@link ReadRange} (e.g. a positional file read). */
export type ReadRangeAsync = (absOffset: number, size: number, dst: Uint8Array, dstOffset: number) => Promise<void>;

/** A copy step: `size` bytes at absolute `src` into `dst[dstOffset …]`. */
interface Piece {
  src: number;
  size: number;
  dst: Uint8Array;
  dstOffset: number;
}

interface Prepared {
  mem: DataSegments;
  ranges: ByteRange[];
}

function dataError(message: string): DiasporaError {
  return new DiasporaError(message, { code: ErrorCodes.DATA });
}

/** Runs the selector; returns the selected descriptor or undefined when no data is wanted. */
function select(
  md: Metadata,
  dataSize: number,
  location: string,
  selector: DataSelector | undefined,
): DataDescriptor | undefined {
  const full = new DataDescriptor(location, dataSize);
  const selected: unknown = selector === undefined ? full : selector(md, full);
  if (selected === null || selected === undefined) return undefined;
  if (!(selected instanceof DataDescriptor)) {
    throw dataError(`The data selector returned ${Array.isArray(selected) ? 'an array' : typeof selected}: expected a DataDescriptor, null or undefined`);
  }
  return selected.size === 0 ? undefined : selected;
}

function checkRanges(ranges: readonly ByteRange[], dataSize: number): void {
  for (const r of ranges) {
    if (r.offset + r.size > dataSize) {
      throw dataError(`Selected data descriptor goes beyond the event data (${dataSize} bytes)`);
    }
  }
}

/** Runs the allocator, checks capacity and ranges. Releases the memory if a check fails. */
function prepare(
  md: Metadata,
  dataSize: number,
  selected: DataDescriptor,
  allocator: DataAllocator | undefined,
): Prepared {
  const mem = DataSegments.from((allocator ?? ByteArrayAllocator)(md, selected));
  try {
    if (mem.size < selected.size) throw dataError(INSUFFICIENT_CAPACITY);
    const ranges = selected.flatten();
    checkRanges(ranges, dataSize);
    return { mem, ranges };
  } catch (err) {
    mem.release();
    throw err;
  }
}

/**
 * Splits the source ranges over the destination segments (a range may straddle segments) and
 * calls `emit` for each piece, in logical order.
 */
function scatter(
  ranges: readonly ByteRange[],
  segments: readonly Uint8Array[],
  emit: (src: number, size: number, dst: Uint8Array, dstOffset: number) => void,
): void {
  let si = 0;
  let segPos = 0;
  for (const r of ranges) {
    let src = r.offset;
    let rem = r.size;
    while (rem > 0) {
      const seg = segments[si];
      if (seg === undefined) throw dataError(INSUFFICIENT_CAPACITY);
      const room = seg.length - segPos;
      if (room === 0) {
        si++;
        segPos = 0;
        continue;
      }
      const take = room < rem ? room : rem;
      emit(src, take, seg, segPos);
      src += take;
      rem -= take;
      segPos += take;
    }
  }
}

/**
 * Selects, allocates and copies an event's data (see the module comment). `readRange` is called
 * once per piece (a flattened range, split where it crosses destination segments), in order.
 * Throws `DataView has insufficient capacity for descriptor segments` when the allocated memory
 * is smaller than the selection; the allocated memory is then released.
 * When the allocated memory is larger than the selection, the bytes after it are left untouched
 * and the returned DataSegments is the whole allocated memory.
 */
export function selectData(
  md: Metadata,
  dataSize: number,
  location: string,
  selector: DataSelector | undefined,
  allocator: DataAllocator | undefined,
  readRange: ReadRange,
): DataSegments {
  const selected = select(md, dataSize, location, selector);
  if (selected === undefined) return DataSegments.EMPTY;
  const { mem, ranges } = prepare(md, dataSize, selected, allocator);
  try {
    const single = mem.segments.length === 1 && ranges.length === 1;
    if (single) readRange(ranges[0].offset, ranges[0].size, mem.segments[0], 0);
    else scatter(ranges, mem.segments, readRange);
  } catch (err) {
    mem.release();
    throw err;
  }
  return mem;
}

/**
 * Two-phase selection for drivers that read the selected bytes of many events at once: first
 * `planSelection` (runs the selector exactly once), then `allocateSelection` for each planned
 * event, then the driver reads every piece straight into its destination.
 */
export function planSelection(md: Metadata, dataSize: number, location: string, selector: DataSelector | undefined): DataDescriptor | undefined {
  return select(md, dataSize, location, selector);
}

/**
 * Second phase of {@link planSelection}: runs the allocator, checks capacity and ranges, and calls
 * `piece` for each copy step (a flattened range, split where it crosses destination segments), in
 * logical order, without copying anything. The caller fills the pieces, and releases the returned
 * memory if it cannot.
 */
export function allocateSelection(
  md: Metadata,
  dataSize: number,
  selected: DataDescriptor,
  allocator: DataAllocator | undefined,
  piece: ReadRange,
): DataSegments {
  const { mem, ranges } = prepare(md, dataSize, selected, allocator);
  try {
    if (mem.segments.length === 1 && ranges.length === 1) piece(ranges[0].offset, ranges[0].size, mem.segments[0], 0);
    else scatter(ranges, mem.segments, piece);
  } catch (err) {
    mem.release();
    throw err;
  }
  return mem;
}

/**
 * Asynchronous {@link selectData} for drivers that read with async I/O. Pieces are read one after
 * the other, in order.
 */
export async function selectDataAsync(
  md: Metadata,
  dataSize: number,
  location: string,
  selector: DataSelector | undefined,
  allocator: DataAllocator | undefined,
  readRange: ReadRangeAsync,
): Promise<DataSegments> {
  const selected = select(md, dataSize, location, selector);
  if (selected === undefined) return DataSegments.EMPTY;
  const { mem, ranges } = prepare(md, dataSize, selected, allocator);
  try {
    if (mem.segments.length === 1 && ranges.length === 1) {
      await readRange(ranges[0].offset, ranges[0].size, mem.segments[0], 0);
    } else {
      const pieces: Piece[] = [];
      scatter(ranges, mem.segments, (src, size, dst, dstOffset) => {
        pieces.push({ src, size, dst, dstOffset });
      });
      for (const p of pieces) await readRange(p.src, p.size, p.dst, p.dstOffset);
    }
  } catch (err) {
    mem.release();
    throw err;
  }
  return mem;
}

/**
 * {@link selectData} for data already in memory (`buffer` is the whole event data).
 *
 * Optimisation — SHARES MEMORY: when no allocator is given and the selection is a single
 * contiguous range (in particular the whole data), the result is a view over `buffer` (a
 * `subarray`, no copy); writing to it writes into `buffer`, and it keeps `buffer` alive.
 * Otherwise the selected bytes are copied into the allocated memory.
 */
export function selectFromBuffer(
  md: Metadata,
  buffer: Uint8Array,
  selector: DataSelector | undefined,
  allocator: DataAllocator | undefined,
  location = '',
): DataSegments {
  const dataSize = buffer.length;
  if (allocator === undefined) {
    const selected = select(md, dataSize, location, selector);
    if (selected === undefined) return DataSegments.EMPTY;
    const ranges = selected.flatten();
    checkRanges(ranges, dataSize);
    if (ranges.length === 1) {
      const r = ranges[0];
      return new DataSegments(r.offset === 0 && r.size === dataSize ? buffer : buffer.subarray(r.offset, r.offset + r.size));
    }
    const mem = Buffer.allocUnsafe(selected.size);
    let p = 0;
    for (const r of ranges) {
      mem.set(buffer.subarray(r.offset, r.offset + r.size), p);
      p += r.size;
    }
    return new DataSegments(mem);
  }
  return selectData(md, dataSize, location, selector, allocator, (abs, size, dst, dstOffset) => {
    dst.set(buffer.subarray(abs, abs + size), dstOffset);
  });
}
