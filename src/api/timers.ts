import { DiasporaError, ErrorCodes } from './errors.js';

/**
 * The longest delay Node's timers accept (2^31 − 1 ms, about 24.8 days): a longer one is shortened to 1 ms with a
 * TimeoutOverflowWarning, so a huge linger or poll interval would become a busy loop and a huge timeout an immediate
 * one. Every user-settable duration that reaches a timer is checked against it.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** A delay option of the API (milliseconds, 0 to {@link MAX_TIMER_MS}), `def` when absent. */
export function timerOption(v: number | undefined, def: number, name: string): number {
  if (v === undefined) return def;
  if (!(v >= 0 && v <= MAX_TIMER_MS)) {
    throw new DiasporaError(`Invalid ${name}: ${String(v)} (milliseconds from 0 to ${MAX_TIMER_MS})`, { code: ErrorCodes.INVALID_ARGUMENT });
  }
  return v;
}
