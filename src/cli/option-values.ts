/**
 * Parsers of numeric option values for commander (argParsers): an InvalidArgumentError becomes
 * `PARSE ERROR: option '<flag>' argument '<value>' is invalid. <message>`, exit 1.
 */
import { InvalidArgumentError } from 'commander';
import { MAX_TIMER_MS } from '../api/timers.js';

/** A non-negative safe integer (`bench -n 0` is accepted: nothing is measured). */
export function parseCount(value: string): number {
  if (!/^\+?\d+$/.test(value.trim())) throw new InvalidArgumentError('Expected a non-negative integer.');
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('Value too large.');
  return n;
}

/** A positive safe integer. */
export function parsePositive(value: string): number {
  const n = parseCount(value);
  if (n < 1) throw new InvalidArgumentError('Expected an integer >= 1.');
  return n;
}

/** A batch size: "adaptive" or an integer >= 1. */
export function parseBatchSize(value: string): number | 'adaptive' {
  return value.trim() === 'adaptive' ? 'adaptive' : parsePositive(value);
}

/**
 * A byte count from 0 to `max` (benchmark sizes: a buffer or a string that large must be possible); `maxText` says
 * the bound in words (e.g. "1 GiB").
 */
export function parseBytesUpTo(max: number, maxText: string): (value: string) => number {
  return (value) => {
    const n = parseCount(value);
    if (n > max) throw new InvalidArgumentError(`Expected at most ${max} bytes (${maxText}).`);
    return n;
  };
}

/** A ratio in [0, 1] (the reference's `--data-interest` / `--data-selectivity`). */
export function parseRatio(value: string): number {
  const t = value.trim();
  const x = t === '' ? NaN : Number(t);
  if (!Number.isFinite(x) || x < 0 || x > 1) throw new InvalidArgumentError('Invalid value (should be between 0 and 1).');
  return x;
}

/** Seconds (`--timeout`), a non-negative finite number that a timer can take; 0 disables the limit. */
export function parseSeconds(value: string): number {
  const t = value.trim();
  const x = t === '' ? NaN : Number(t);
  if (!Number.isFinite(x) || x < 0) throw new InvalidArgumentError('Expected a non-negative number of seconds.');
  if (x * 1000 > MAX_TIMER_MS) throw new InvalidArgumentError(`Expected at most ${MAX_TIMER_MS / 1000} seconds (${MAX_TIMER_MS} ms).`);
  return x;
}
