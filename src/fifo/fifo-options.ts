import { MAX_TIMER_MS } from '../api/timers.js';

/**
 * Per-FIFO options of the fifo daemon (diaspora-ctl.md §7.2 table): validation, defaults and their warnings.
 * Pure functions: warnings are returned as message texts (without the `[warning] ` prefix), in option order.
 */
export const FIFO_FORMATS = ['raw', 'json', 'envelope'] as const;
export type FifoFormat = (typeof FIFO_FORMATS)[number];

export const START_POSITIONS = ['committed', 'earliest', 'latest'] as const;
export type StartPosition = (typeof START_POSITIONS)[number];

export const DEFAULT_BATCH_SIZE = 128;
export const DEFAULT_LINGER_MS = 5;
export const DEFAULT_FORMAT: FifoFormat = 'raw';
export const DEFAULT_START: StartPosition = 'committed';

export interface ProducerFifoOptions {
  format: FifoFormat;
  batchSize: number;
  lingerMs: number;
}

export interface ConsumerFifoOptions {
  format: FifoFormat;
  start: StartPosition;
}

export interface Resolved<T> {
  options: T;
  warnings: string[];
}

/** A decimal integer ≥ `min` (digits only, within the safe range), else undefined. */
function parseInteger(text: string, min: number): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min ? n : undefined;
}

function formatOption(value: string, path: string, warnings: string[]): FifoFormat {
  if ((FIFO_FORMATS as readonly string[]).includes(value)) return value as FifoFormat;
  warnings.push(`Unknown format '${value}' for FIFO '${path}', using 'raw' instead`);
  return DEFAULT_FORMAT;
}

/** Options of a producer FIFO (`path -> topic`): `format`, `batch_size`, `linger_ms`. */
export function resolveProducerOptions(path: string, given: ReadonlyMap<string, string>): Resolved<ProducerFifoOptions> {
  const warnings: string[] = [];
  const options: ProducerFifoOptions = { format: DEFAULT_FORMAT, batchSize: DEFAULT_BATCH_SIZE, lingerMs: DEFAULT_LINGER_MS };
  for (const [key, value] of given) {
    switch (key) {
      case 'format':
        options.format = formatOption(value, path, warnings);
        break;
      case 'batch_size': {
        const n = parseInteger(value, 1);
        if (n === undefined) warnings.push(`Invalid batch_size '${value}' for FIFO '${path}', using default (${DEFAULT_BATCH_SIZE})`);
        options.batchSize = n ?? DEFAULT_BATCH_SIZE;
        break;
      }
      case 'linger_ms': {
        // a control line must not stop the daemon: out of range is refused like any invalid value (§7.2: warning, default)
        const n = parseInteger(value, 0);
        const limit = n !== undefined && n > MAX_TIMER_MS ? ` (at most ${MAX_TIMER_MS} ms)` : '';
        const ok = n !== undefined && limit === '';
        if (!ok) warnings.push(`Invalid linger_ms '${value}' for FIFO '${path}'${limit}, using default (${DEFAULT_LINGER_MS})`);
        options.lingerMs = ok ? n : DEFAULT_LINGER_MS;
        break;
      }
      default:
        warnings.push(`Unknown option '${key}' for FIFO '${path}'`);
    }
  }
  return { options, warnings };
}

/** Options of a consumer FIFO (`path <- topic`): `format`, `start`. */
export function resolveConsumerOptions(path: string, given: ReadonlyMap<string, string>): Resolved<ConsumerFifoOptions> {
  const warnings: string[] = [];
  const options: ConsumerFifoOptions = { format: DEFAULT_FORMAT, start: DEFAULT_START };
  for (const [key, value] of given) {
    switch (key) {
      case 'format':
        options.format = formatOption(value, path, warnings);
        break;
      case 'start':
        if ((START_POSITIONS as readonly string[]).includes(value)) options.start = value as StartPosition;
        else {
          warnings.push(`Invalid start '${value}' for FIFO '${path}', using default (${DEFAULT_START})`);
          options.start = DEFAULT_START;
        }
        break;
      default:
        warnings.push(`Unknown option '${key}' for FIFO '${path}'`);
    }
  }
  return { options, warnings };
}

export function sameProducerOptions(a: ProducerFifoOptions, b: ProducerFifoOptions): boolean {
  return a.format === b.format && a.batchSize === b.batchSize && a.lingerMs === b.lingerMs;
}
