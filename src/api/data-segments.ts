/**
 * DataSegments (api.md §3.1): the data of an event, the reference's `DataView` (renamed so it does
 * not shadow the JS global `DataView`). Its logical content is the concatenation of its segments;
 * the segments are referenced, never copied.
 *
 * This sits on the producer's hot path, so the single-segment case avoids per-call allocations
 * and the size is computed once at construction.
 */
import { DiasporaError, ErrorCodes } from './errors.js';

/** Anything accepted where event data is expected. */
export type DataLike = Uint8Array | readonly Uint8Array[] | DataSegments;

export interface DataSegmentsOptions {
  /**
   * Called once, when the library no longer references the buffers (e.g. the pushed event was
   * written), or when {@link DataSegments.release} is first called.
   */
  onRelease?: () => void;
}

const NO_SEGMENTS: readonly Uint8Array[] = Object.freeze([]);

function checkOffset(offset: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new DiasporaError(`Invalid argument: offset must be a non-negative safe integer (got ${String(offset)})`, {
      code: ErrorCodes.INVALID_ARGUMENT,
    });
  }
}

function notASegment(): DiasporaError {
  return new DiasporaError('Invalid argument: data segments must be Uint8Array instances', {
    code: ErrorCodes.INVALID_ARGUMENT,
  });
}

export class DataSegments {
  /** Shared empty instance (no segments, size 0). */
  static readonly EMPTY: DataSegments = new DataSegments();

  private segs: readonly Uint8Array[] | undefined;
  /** Sum of the segment lengths (computed once). */
  readonly size: number;

  /** The only segment when there is exactly one (fast paths), else undefined. */
  private readonly single: Uint8Array | undefined;
  private onRelease: (() => void) | undefined;
  private bufferView: Buffer | undefined;

  /**
   * @param segments one buffer or a list of buffers; they are referenced, not copied (a list is
   *   shallow-copied so later changes to the caller's array do not affect this object).
   */
  constructor(segments?: Uint8Array | readonly Uint8Array[], opts?: DataSegmentsOptions) {
    this.onRelease = opts?.onRelease;
    if (segments === undefined || segments === null) {
      this.segs = NO_SEGMENTS;
      this.size = 0;
      this.single = undefined;
    } else if (segments instanceof Uint8Array) {
      this.segs = undefined; // built on demand: most single-segment data is never iterated
      this.size = segments.length;
      this.single = segments;
    } else {
      if (!Array.isArray(segments)) throw notASegment();
      const n = segments.length;
      const copy = new Array<Uint8Array>(n);
      let size = 0;
      for (let i = 0; i < n; i++) {
        const s = segments[i];
        if (!(s instanceof Uint8Array)) throw notASegment();
        copy[i] = s;
        size += s.length;
      }
      this.segs = n === 0 ? NO_SEGMENTS : copy;
      this.size = size;
      this.single = n === 1 ? copy[0] : undefined;
    }
  }

  /** The segments, in logical order. Do not mutate this array. */
  get segments(): readonly Uint8Array[] {
    return (this.segs ??= [this.single as Uint8Array]);
  }

  /**
   * Wraps any {@link DataLike}: a DataSegments is returned as is, `undefined`/`null` or an empty
   * list give {@link DataSegments.EMPTY}. No bytes are copied.
   */
  static from(d: DataLike | undefined | null): DataSegments {
    if (d === undefined || d === null) return DataSegments.EMPTY;
    if (d instanceof DataSegments) return d;
    if (d instanceof Uint8Array) return new DataSegments(d);
    if (Array.isArray(d) && d.length === 0) return DataSegments.EMPTY;
    return new DataSegments(d as readonly Uint8Array[]);
  }

  /**
   * Copies `min(dst.length, size − offset)` bytes starting at logical `offset` into `dst[0…]`;
   * returns the number of bytes copied (0 when `offset ≥ size`). Never touches bytes of `dst`
   * beyond the copied count.
   */
  read(dst: Uint8Array, offset = 0): number {
    checkOffset(offset);
    const size = this.size;
    if (offset >= size) return 0;
    let n = dst.length;
    if (n > size - offset) n = size - offset;
    if (n === 0) return 0;
    const single = this.single;
    if (single !== undefined) {
      dst.set(offset === 0 && n === single.length ? single : single.subarray(offset, offset + n), 0);
      return n;
    }
    const segs = this.segments;
    let i = 0;
    let pos = offset; // position inside segs[i]
    while (pos >= segs[i].length) {
      pos -= segs[i].length;
      i++;
    }
    let done = 0;
    while (done < n) {
      const seg = segs[i++];
      let take = seg.length - pos;
      if (take > n - done) take = n - done;
      if (take > 0) {
        dst.set(pos === 0 && take === seg.length ? seg : seg.subarray(pos, pos + take), done);
        done += take;
      }
      pos = 0;
    }
    return n;
  }

  /**
   * Copies `min(src.length, size − offset)` bytes of `src` into the logical range starting at
   * `offset`; returns the number of bytes copied (0 when `offset ≥ size`). Never touches bytes
   * outside `[offset, offset + copied)`.
   */
  write(src: Uint8Array, offset = 0): number {
    checkOffset(offset);
    const size = this.size;
    if (offset >= size) return 0;
    let n = src.length;
    if (n > size - offset) n = size - offset;
    if (n === 0) return 0;
    const single = this.single;
    if (single !== undefined) {
      single.set(n === src.length ? src : src.subarray(0, n), offset);
      return n;
    }
    const segs = this.segments;
    let i = 0;
    let pos = offset;
    while (pos >= segs[i].length) {
      pos -= segs[i].length;
      i++;
    }
    let done = 0;
    while (done < n) {
      const seg = segs[i++];
      let take = seg.length - pos;
      if (take > n - done) take = n - done;
      if (take > 0) {
        seg.set(src.subarray(done, done + take), pos);
        done += take;
      }
      pos = 0;
    }
    return n;
  }

  /**
   * The content as one Buffer. With exactly one segment this is a view over the same memory
   * (no copy: writes through it are visible in the segment); otherwise a fresh concatenation.
   */
  toBuffer(): Buffer {
    const single = this.single;
    if (single !== undefined) {
      let b = this.bufferView;
      if (b === undefined) {
        b = Buffer.isBuffer(single) ? single : Buffer.from(single.buffer, single.byteOffset, single.byteLength);
        this.bufferView = b;
      }
      return b;
    }
    if (this.segments.length === 0) return Buffer.alloc(0);
    return Buffer.concat(this.segments as Uint8Array[], this.size);
  }

  /**
   * Signals that the library no longer references the buffers: calls `onRelease` at most once
   * (later calls do nothing). An exception thrown by the callback propagates to the caller.
   */
  release(): void {
    const cb = this.onRelease;
    if (cb === undefined) return;
    this.onRelease = undefined;
    cb();
  }
}
