/**
 * DataDescriptor (api.md §3.2): describes which bytes of an event's data (the "base" data of
 * `baseSize` bytes at an opaque `location`) a consumer wants, as a stack of views.
 *
 * Offsets given to `make*View` are RELATIVE to the view they are called on (the documented
 * semantics; the reference intersects every selection with absolute base offsets instead).
 * Descriptors are immutable: every `make*View` returns a new descriptor.
 */
import { DiasporaError, ErrorCodes } from './errors.js';

/** A byte range `[offset, offset + size)`. */
export interface ByteRange {
  offset: number;
  size: number;
}

export interface ContiguousSelection {
  readonly kind: 'contiguous';
  readonly offset: number;
  readonly size: number;
}

export interface StridedSelection {
  readonly kind: 'strided';
  readonly offset: number;
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly gapSize: number;
}

export interface UnstructuredSelection {
  readonly kind: 'unstructured';
  /** In increasing order, non-overlapping, non-adjacent, non-empty. */
  readonly segments: readonly ByteRange[];
}

export type Selection = ContiguousSelection | StridedSelection | UnstructuredSelection;

export const STRIDED_OUT_OF_BOUNDS = 'Invalid strided view: would go out of bounds';
export const UNSTRUCTURED_OVERLAP = 'Invalid unstructured view: segments overlapping or out of order';
export const UNSTRUCTURED_OUT_OF_BOUNDS = 'Invalid unstructured view: would go out of bounds';

const TAG_CONTIGUOUS = 1;
const TAG_STRIDED = 2;
const TAG_UNSTRUCTURED = 3;

const NO_SELECTIONS: readonly Selection[] = Object.freeze([]);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function dataError(message: string): DiasporaError {
  return new DiasporaError(message, { code: ErrorCodes.DATA });
}

function checkArg(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new DiasporaError(`Invalid argument: ${name} must be a non-negative safe integer (got ${String(v)})`, {
      code: ErrorCodes.INVALID_ARGUMENT,
    });
  }
}

/** Appends `[offset, offset + size)` to `out`, merging with the last range when adjacent. */
function pushRange(out: ByteRange[], offset: number, size: number): void {
  if (size === 0) return;
  const n = out.length;
  if (n > 0) {
    const last = out[n - 1];
    if (last.offset + last.size === offset) {
      last.size += size;
      return;
    }
  }
  out.push({ offset, size });
}

/**
 * Maps increasing, non-overlapping logical ranges through `cur` (absolute extents forming the
 * current logical stream). Logical ranges must be fed in increasing order.
 */
class Mapper {
  private i = 0;
  /** Logical offset at which cur[i] starts. */
  private base = 0;
  constructor(
    private readonly cur: readonly ByteRange[],
    readonly out: ByteRange[],
  ) {}

  map(logical: number, size: number): void {
    const cur = this.cur;
    let i = this.i;
    let base = this.base;
    while (i < cur.length && base + cur[i].size <= logical) {
      base += cur[i].size;
      i++;
    }
    let pos = logical;
    let rem = size;
    while (rem > 0 && i < cur.length) {
      const ext = cur[i];
      const inExt = pos - base;
      let take = ext.size - inExt;
      if (take > rem) take = rem;
      pushRange(this.out, ext.offset + inExt, take);
      pos += take;
      rem -= take;
      if (inExt + take === ext.size) {
        base += ext.size;
        i++;
      }
    }
    this.i = i;
    this.base = base;
    // rem > 0 cannot happen for validated descriptors (every selection lies within its view).
  }
}

/**
 * Validates `sel` against a view of `viewSize` bytes and returns the resulting size. Used by
 * `load()` (the `make*View` methods validate their own arguments).
 */
function checkedSelectionSize(viewSize: number, sel: Selection): number {
  switch (sel.kind) {
    case 'contiguous':
      if (sel.offset > viewSize || sel.size > viewSize - sel.offset) throw dataError('Invalid DataDescriptor encoding: contiguous selection out of bounds');
      return sel.size;
    case 'strided': {
      const { offset: o, numBlocks: k, blockSize: b, gapSize: g } = sel;
      if (k === 0 || b === 0) throw dataError('Invalid DataDescriptor encoding: empty strided selection');
      if (o + (k - 1) * (b + g) + b > viewSize) throw dataError(STRIDED_OUT_OF_BOUNDS);
      return k * b;
    }
    case 'unstructured': {
      let end = 0;
      let total = 0;
      for (const s of sel.segments) {
        if (s.size === 0) throw dataError('Invalid DataDescriptor encoding: empty unstructured segment');
        if (s.offset < end) throw dataError(UNSTRUCTURED_OVERLAP);
        if (s.offset >= viewSize || s.offset + s.size > viewSize) throw dataError(UNSTRUCTURED_OUT_OF_BOUNDS);
        end = s.offset + s.size;
        total += s.size;
      }
      return total;
    }
  }
}

export class DataDescriptor {
  /** Opaque location of the base data (files and kafka use `""`). */
  readonly location: string;
  /** Number of bytes this descriptor selects. */
  readonly size: number;
  /** Size of the base data. */
  readonly baseSize: number;
  /** The stack of views, oldest first; each is relative to the view produced by the previous ones. */
  readonly selections: readonly Selection[];

  /** A descriptor of the whole base data `(location, size)`; default `("", 0)` is the "empty" descriptor. */
  constructor(location = '', size = 0) {
    if (typeof location !== 'string') {
      throw new DiasporaError('Invalid argument: location must be a string', { code: ErrorCodes.INVALID_ARGUMENT });
    }
    checkArg('size', size);
    this.location = location;
    this.size = size;
    this.baseSize = size;
    this.selections = NO_SELECTIONS;
  }

  private derive(sel: Selection, size: number): DataDescriptor {
    const d = new DataDescriptor(this.location, this.baseSize);
    const m = d as Mutable<DataDescriptor>;
    m.size = size;
    const n = this.selections.length;
    const sels = new Array<Selection>(n + 1);
    for (let i = 0; i < n; i++) sels[i] = this.selections[i];
    sels[n] = sel;
    m.selections = sels;
    return d;
  }

  /**
   * The `size` bytes at `offset` of this view (clamped to the end). Returns the empty descriptor
   * when `offset > this.size`, `size == 0` or `this.size == 0`.
   */
  makeSubView(offset: number, size: number): DataDescriptor {
    checkArg('offset', offset);
    checkArg('size', size);
    const S = this.size;
    if (offset > S || size === 0 || S === 0) return new DataDescriptor();
    const n = Math.min(size, S - offset);
    return this.derive({ kind: 'contiguous', offset, size: n }, n);
  }

  /**
   * `numBlocks` blocks of `blockSize` bytes, the first at `offset`, separated by `gapSize` bytes.
   * Returns the empty descriptor when `offset > this.size`, `numBlocks == 0` or `blockSize == 0`;
   * throws `Invalid strided view: would go out of bounds` when the last block passes the end (a
   * trailing gap past the end is accepted).
   */
  makeStridedView(offset: number, numBlocks: number, blockSize: number, gapSize: number): DataDescriptor {
    checkArg('offset', offset);
    checkArg('numBlocks', numBlocks);
    checkArg('blockSize', blockSize);
    checkArg('gapSize', gapSize);
    const S = this.size;
    if (offset > S || numBlocks === 0 || blockSize === 0) return new DataDescriptor();
    if (offset + (numBlocks - 1) * (blockSize + gapSize) + blockSize > S) throw dataError(STRIDED_OUT_OF_BOUNDS);
    return this.derive({ kind: 'strided', offset, numBlocks, blockSize, gapSize }, numBlocks * blockSize);
  }

  /**
   * The given segments of this view, in order. Zero-size segments are ignored (neither checked nor
   * kept); adjacent segments are merged; a single remaining segment gives `makeSubView` of it; none
   * gives the empty descriptor. Throws `Invalid unstructured view: segments overlapping or out of
   * order` or `Invalid unstructured view: would go out of bounds`.
   */
  makeUnstructuredView(segments: readonly { offset: number; size: number }[]): DataDescriptor {
    const S = this.size;
    const merged: ByteRange[] = [];
    let end = 0;
    let total = 0;
    for (const seg of segments) {
      const { offset, size } = seg;
      checkArg('offset', offset);
      checkArg('size', size);
      if (size === 0) continue;
      if (offset < end) throw dataError(UNSTRUCTURED_OVERLAP);
      if (offset >= S || offset + size > S) throw dataError(UNSTRUCTURED_OUT_OF_BOUNDS);
      pushRange(merged, offset, size);
      end = offset + size;
      total += size;
    }
    if (merged.length === 0) return new DataDescriptor();
    if (merged.length === 1) return this.makeSubView(merged[0].offset, merged[0].size);
    return this.derive({ kind: 'unstructured', segments: merged }, total);
  }

  /**
   * Absolute byte ranges of the base data selected by this descriptor, in logical order,
   * adjacent ranges merged and empty ranges dropped. Without selections: `[(0, baseSize)]`
   * (so `[(0, 0)]` for the empty descriptor). Returns a fresh array each call.
   */
  flatten(): ByteRange[] {
    const sels = this.selections;
    const n = sels.length;
    if (n === 0) return [{ offset: 0, size: this.baseSize }];
    // The first selection applies to the whole base data: its logical ranges are absolute.
    let cur: ByteRange[] = [];
    const first = sels[0];
    switch (first.kind) {
      case 'contiguous':
        if (first.size > 0) cur.push({ offset: first.offset, size: first.size });
        break;
      case 'strided': {
        const step = first.blockSize + first.gapSize;
        for (let i = 0, o = first.offset; i < first.numBlocks; i++, o += step) pushRange(cur, o, first.blockSize);
        break;
      }
      case 'unstructured':
        for (const s of first.segments) pushRange(cur, s.offset, s.size);
        break;
    }
    for (let j = 1; j < n; j++) {
      const sel = sels[j];
      const m = new Mapper(cur, []);
      switch (sel.kind) {
        case 'contiguous':
          m.map(sel.offset, sel.size);
          break;
        case 'strided': {
          const step = sel.blockSize + sel.gapSize;
          for (let i = 0, o = sel.offset; i < sel.numBlocks; i++, o += step) m.map(o, sel.blockSize);
          break;
        }
        case 'unstructured':
          for (const s of sel.segments) m.map(s.offset, s.size);
          break;
      }
      cur = m.out;
    }
    return cur;
  }

  /**
   * Binary form (all integers u64 LE): `size, baseSize, len(location), location (UTF-8), count`,
   * then per selection a u8 tag and its fields: 1 Contiguous `offset, size`; 2 Strided `offset,
   * numBlocks, blockSize, gapSize`; 3 Unstructured `n` then n × `offset, size`.
   */
  save(): Uint8Array {
    const locLen = Buffer.byteLength(this.location, 'utf8');
    let total = 8 * 4 + locLen;
    for (const sel of this.selections) {
      total += 1;
      if (sel.kind === 'contiguous') total += 16;
      else if (sel.kind === 'strided') total += 32;
      else total += 8 + 16 * sel.segments.length;
    }
    const buf = Buffer.alloc(total);
    let p = 0;
    const u64 = (v: number): void => {
      buf.writeBigUInt64LE(BigInt(v), p);
      p += 8;
    };
    u64(this.size);
    u64(this.baseSize);
    u64(locLen);
    p += buf.write(this.location, p, 'utf8');
    u64(this.selections.length);
    for (const sel of this.selections) {
      switch (sel.kind) {
        case 'contiguous':
          buf[p++] = TAG_CONTIGUOUS;
          u64(sel.offset);
          u64(sel.size);
          break;
        case 'strided':
          buf[p++] = TAG_STRIDED;
          u64(sel.offset);
          u64(sel.numBlocks);
          u64(sel.blockSize);
          u64(sel.gapSize);
          break;
        case 'unstructured':
          buf[p++] = TAG_UNSTRUCTURED;
          u64(sel.segments.length);
          for (const s of sel.segments) {
            u64(s.offset);
            u64(s.size);
          }
          break;
      }
    }
    return buf;
  }

  /**
   * Decodes {@link save}'s output (the whole of `bytes`). Malformed or inconsistent input throws a
   * DiasporaError (code DATA) starting with `Invalid DataDescriptor encoding`.
   */
  static load(bytes: Uint8Array): DataDescriptor {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const len = bytes.byteLength;
    let p = 0;
    const need = (n: number): void => {
      if (len - p < n) throw dataError('Invalid DataDescriptor encoding: truncated input');
    };
    const u64 = (): number => {
      need(8);
      const v = view.getBigUint64(p, true);
      p += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw dataError('Invalid DataDescriptor encoding: value too large');
      return Number(v);
    };
    const size = u64();
    const baseSize = u64();
    const locLen = u64();
    need(locLen);
    const location = Buffer.from(bytes.buffer, bytes.byteOffset + p, locLen).toString('utf8');
    p += locLen;
    const count = u64();
    if (count > len - p) throw dataError('Invalid DataDescriptor encoding: truncated input');
    const selections: Selection[] = [];
    let viewSize = baseSize;
    for (let i = 0; i < count; i++) {
      need(1);
      const tag = bytes[p++];
      let sel: Selection;
      if (tag === TAG_CONTIGUOUS) {
        const offset = u64();
        sel = { kind: 'contiguous', offset, size: u64() };
      } else if (tag === TAG_STRIDED) {
        const offset = u64();
        const numBlocks = u64();
        const blockSize = u64();
        sel = { kind: 'strided', offset, numBlocks, blockSize, gapSize: u64() };
      } else if (tag === TAG_UNSTRUCTURED) {
        const n = u64();
        if (n > (len - p) / 16) throw dataError('Invalid DataDescriptor encoding: truncated input');
        const segments: ByteRange[] = new Array<ByteRange>(n);
        for (let j = 0; j < n; j++) {
          const offset = u64();
          segments[j] = { offset, size: u64() };
        }
        sel = { kind: 'unstructured', segments };
      } else {
        throw dataError(`Invalid DataDescriptor encoding: unknown selection tag ${tag}`);
      }
      viewSize = checkedSelectionSize(viewSize, sel);
      selections.push(sel);
    }
    if (p !== len) throw dataError('Invalid DataDescriptor encoding: trailing bytes');
    if (viewSize !== size) throw dataError('Invalid DataDescriptor encoding: size does not match its selections');
    const d = new DataDescriptor(location, baseSize);
    const m = d as Mutable<DataDescriptor>;
    m.size = size;
    if (selections.length > 0) m.selections = selections;
    return d;
  }
}
