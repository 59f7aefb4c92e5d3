/**
 * The data selector of `bench consume` (the reference's `Selector` in benchmarks/diaspora-consumer-benchmark.cpp):
 * for each event, with probability `interest` the data is wanted, and then a fraction `selectivity` of it is selected;
 * otherwise no data is read. The driver reads only the selected bytes.
 */
import type { DataDescriptor } from '../api/data-descriptor.js';
import { NoDataSelector, type DataSelector } from '../api/data-selection.js';
import type { Metadata } from '../api/metadata.js';
import { Random } from './common.js';

export type SelectionMode = 'contiguous' | 'strided';

export interface SelectorSettings {
  /** Probability that an event's data is read, in [0, 1]. */
  interest: number;
  /** Fraction of the data of an interesting event that is read, in [0, 1]. */
  selectivity: number;
  /**
   * `contiguous` (the reference): the first ⌊size × selectivity⌋ bytes (`makeSubView(0, …)`).
   * `strided`: the same number of bytes (within rounding) spread evenly over the data as k blocks of about
   * `blockSize` bytes (`makeStridedView`).
   */
  mode: SelectionMode;
  blockSize: number;
  seed?: number;
}

/** Selected byte count for data of `size` bytes (contiguous mode). */
export function selectedBytes(size: number, selectivity: number): number {
  return Math.floor(size * selectivity);
}

/**
 * The strided view covering about `size × selectivity` bytes: k = max(1, ⌊want / blockSize⌋) blocks of
 * b = ⌊want / k⌋ bytes, one every ⌊size / k⌋ bytes from offset 0 (gap = step − b). The last block ends at
 * (k − 1) × step + b ≤ size.
 */
export function stridedView(full: DataDescriptor, selectivity: number, blockSize: number): DataDescriptor {
  const size = full.size;
  const want = selectedBytes(size, selectivity);
  if (want === 0) return full.makeSubView(0, 0);
  if (want >= size) return full;
  const k = Math.max(1, Math.floor(want / blockSize));
  const b = Math.floor(want / k);
  const step = Math.floor(size / k);
  return full.makeStridedView(0, k, b, step - b);
}

/**
 * The selector for the settings, or `undefined` when every event's full data is wanted (interest = selectivity = 1:
 * the driver's bulk path) and {@link NoDataSelector} when none is (interest or selectivity 0). Both shortcuts select
 * exactly what the general selector would.
 */
export function makeBenchSelector(o: SelectorSettings): DataSelector | undefined {
  if (o.interest >= 1 && o.selectivity >= 1) return undefined;
  if (o.interest <= 0 || o.selectivity <= 0) return NoDataSelector;
  const rng = new Random(o.seed ?? 0x1a2b3c4d);
  const { interest, selectivity, blockSize } = o;
  const wanted = (): boolean => interest >= 1 || rng.next() < interest;
  if (o.mode === 'strided') {
    return (_md: Metadata, full: DataDescriptor) => (wanted() ? stridedView(full, selectivity, blockSize) : null);
  }
  if (selectivity >= 1) return (_md: Metadata, full: DataDescriptor) => (wanted() ? full : null);
  return (_md: Metadata, full: DataDescriptor) => (wanted() ? full.makeSubView(0, selectedBytes(full.size, selectivity)) : null);
}
