/**
 * Helpers shared by `diaspora-ctl bench produce` and `bench consume` (the Node.js counterparts of the reference's
 * `diaspora-producer-benchmark` and `diaspora-consumer-benchmark`, diaspora-project/diaspora-stream-api
 * `benchmarks/*.cpp`): the synthetic events, the seeded PRNG, the result block, the progress bar
 * and the safety time limit.
 */
import { Metadata } from '../api/metadata.js';

/** One MB as printed by the reference benchmarks: 1024 × 1024 bytes (they label MiB as "MB"). */
export const MB = 1024 * 1024;

/** Default safety limit of a benchmark run, in seconds (`--timeout`). */
export const DEFAULT_TIMEOUT_S = 300;

/**
 * Unmeasured events before the timed run (`--warmup`), in rounds (`--warmup-rounds`). bench produce -m 128 -s 0
 * -b 128, 100,000 events, 5 alternated runs of each: 1 × 50,000 gave 0.72-0.95 M events/s (median 0.83 M), 4 × 50,000
 * gave 0.90-1.52 M (median 1.13 M), 4 × 75,000 the same (1.12 M): one long round does not get there (1 × 300,000:
 * 0.72-1.03 M), since what only a new topic or producer runs keeps deoptimizing the hot code.
 */
export const DEFAULT_WARMUP_EVENTS = 200_000;
export const DEFAULT_WARMUP_ROUNDS = 4;

/** The events of each warm-up round: `total` split into at most `rounds` rounds of at most `cap` events each. */
export function warmupRounds(total: number, rounds: number, cap = Infinity): number[] {
  const k = Math.min(rounds, total);
  return Array.from({ length: k }, (_, i) => Math.min(cap, Math.floor(total / k) + (i < total % k ? 1 : 0)));
}

// ---------------------------------------------------------------------------------------------
// Random numbers: a small seeded generator, so that runs are reproducible

/** xorshift32; `next()` is uniform in [0, 1). */
export class Random {
  private s: number;
  constructor(seed = 0x9e3779b9) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  nextU32(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.s = x;
    return x;
  }
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Fills `buf` with random bytes. */
  fill(buf: Uint8Array): void {
    let i = 0;
    const n = buf.length;
    for (; i + 4 <= n; i += 4) {
      const x = this.nextU32();
      buf[i] = x & 0xff;
      buf[i + 1] = (x >>> 8) & 0xff;
      buf[i + 2] = (x >>> 16) & 0xff;
      buf[i + 3] = x >>> 24;
    }
    for (; i < n; i++) buf[i] = this.nextU32() & 0xff;
  }
}

// ---------------------------------------------------------------------------------------------
// Synthetic events

const CHARACTERS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const CHAR_CODES = Buffer.from(CHARACTERS, 'latin1');

/** n random alphanumeric characters, as a flat (sequential) string. */
function randomChars(rng: Random, n: number): string {
  const b = Buffer.allocUnsafe(n);
  rng.fill(b);
  for (let i = 0; i < n; i++) b[i] = CHAR_CODES[(b[i] as number) % CHAR_CODES.length] as number;
  return b.toString('latin1');
}

/** Size of the smallest padded object `{"p":""}`. */
export const MIN_OBJECT_METADATA = 8;

/**
 * The metadata of a benchmark event, whose canonical compact JSON text is exactly `size` bytes:
 *
 * * `size >= 8`: the object `{"p":"<size − 8 random alphanumeric characters>"}`;
 * * `2 <= size < 8`: the JSON string `"<size − 2 random alphanumeric characters>"` (the reference's format for every
 *   size: `random_string(length)` in diaspora-producer-benchmark.cpp);
 * * `size < 2` (the reference default 0, for which the reference underflows): `{}`, 2 bytes.
 *
 * Alphanumeric characters need no JSON escaping, so the text length in bytes is exact.
 */
export function makeMetadata(rng: Random, size: number): Metadata {
  if (size >= MIN_OBJECT_METADATA) return Metadata.fromCanonicalText(`{"p":"${randomChars(rng, size - MIN_OBJECT_METADATA)}"}`);
  if (size >= 2) return Metadata.fromCanonicalText(`"${randomChars(rng, size - 2)}"`);
  return Metadata.fromCanonicalText('{}');
}

/** Byte size of the metadata {@link makeMetadata} builds for a requested size. */
export function metadataBytes(size: number): number {
  return size >= 2 ? size : 2;
}

/**
 * Distinct metadata objects are prepared before the timed loop, like the reference (which prepares all `n`): at most
 * this many, reused round robin beyond (their canonical text is cached, so a reused object costs the same as a new one).
 */
export const METADATA_RING = 65536;

/** Bytes of metadata text the ring holds at most: large metadata is reused sooner instead of filling the memory. */
export const METADATA_RING_BYTES = 64 * MB;

/** Number of distinct metadata objects to prepare for `n` events of `size` bytes of metadata (at least 1). */
export function metadataRingSize(n: number, size: number): number {
  return Math.max(1, Math.min(n, METADATA_RING, Math.floor(METADATA_RING_BYTES / Math.max(1, size))));
}

/**
 * Bounds of the producer benchmark's sizes: the data pool is twice the data size (a Buffer: at most 4 GiB in Node 20),
 * and metadata is built as one string (V8 strings stop below 512 MiB; 16 MiB keeps the ring and the drivers sane).
 */
export const MAX_BENCH_DATA_SIZE = 1024 * MB;
export const MAX_BENCH_METADATA_SIZE = 16 * MB;

/** Bytes of random data from which every event's data is a zero-copy slice (at a varying offset). */
export const DATA_POOL_BYTES = 4 * MB;

/**
 * The data source of a producer benchmark: event `i` gets `size` bytes of a random pool, starting at offset
 * `(i × 4099) mod (pool − size)` (so consecutive events differ). The slices are never modified, so handing them to the
 * producer without copying is safe.
 */
export class DataSource {
  private readonly pool: Buffer;
  private readonly span: number;
  constructor(
    rng: Random,
    readonly size: number,
  ) {
    this.pool = Buffer.allocUnsafe(size === 0 ? 0 : Math.max(DATA_POOL_BYTES, 2 * size));
    rng.fill(this.pool);
    this.span = this.pool.length - size;
  }
  slice(i: number): Buffer | undefined {
    if (this.size === 0) return undefined;
    const off = this.span === 0 ? 0 : (i * 4099) % this.span;
    return this.pool.subarray(off, off + this.size);
  }
}

// ---------------------------------------------------------------------------------------------
// Output

/** A rate as printed on the result lines: plain decimal with 2 decimals (never exponent notation). */
export function formatRate(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : '0.00';
}

export interface BenchResult {
  seconds: number;
  events: number;
  /** Bytes counted for the bandwidth (metadata text + data). */
  bytes: number;
  /** The process's CPU time (all threads) during the timed part, from {@link cpuClock}. */
  cpu?: NodeJS.CpuUsage;
}

/**
 * Starts measuring this process's CPU time (user + system, all threads: libuv's pool included); the returned
 * function gives the usage since. Printed beside the throughput because on a shared, noisy machine CPU time per
 * event varies far less than wall time, which makes A/B comparisons of builds possible.
 */
export function cpuClock(): () => NodeJS.CpuUsage {
  const start = process.cpuUsage();
  return () => process.cpuUsage(start);
}

/**
 * The reference's result block (stdout):
 *
 *     --- Benchmark Results ---
 *     Total time: <s> s
 *     Total events: <n>
 *     Throughput: <events/s> events/s
 *     Bandwidth: <MB/s> MB/s          (MB = 2^20 bytes, as in the reference)
 *     CPU time: <µs> us/event (…)     (ours, when measured)
 */
export function resultLines(r: BenchResult): string[] {
  const t = r.seconds;
  return [
    '',
    '--- Benchmark Results ---',
    `Total time: ${t.toFixed(6)} s`,
    `Total events: ${r.events}`,
    `Throughput: ${formatRate(t > 0 ? r.events / t : 0)} events/s`,
    `Bandwidth: ${formatRate(t > 0 ? r.bytes / MB / t : 0)} MB/s`,
    ...(r.cpu !== undefined ? [cpuLine(r.cpu, r.events)] : []),
  ];
}

/** `CPU time: <µs> us/event (user <s> s, system <s> s)` (ours; the reference prints no such line). */
function cpuLine(cpu: NodeJS.CpuUsage, events: number): string {
  const perEvent = events > 0 ? (cpu.user + cpu.system) / events : 0;
  return `CPU time: ${perEvent.toFixed(3)} us/event (user ${(cpu.user / 1e6).toFixed(3)} s, system ${(cpu.system / 1e6).toFixed(3)} s)`;
}

/** The reference's option block (stdout): `--- Benchmark Options ---` then `<label>: <value>` lines. */
export function optionLines(entries: [string, string | number][]): string[] {
  return ['--- Benchmark Options ---', ...entries.map(([k, v]) => `${k}: ${v}`)];
}

// ---------------------------------------------------------------------------------------------
// Progress bar (stderr, only when it is a terminal)

export class Progress {
  private last = 0;
  private readonly enabled: boolean;
  private drawn = false;
  constructor(
    private readonly total: number,
    private readonly what: string,
    enabled = process.stderr.isTTY === true,
  ) {
    this.enabled = enabled && total > 0;
  }

  /** Cheap enough for the hot loop: draws at most every 100 ms, checked every 4096 calls. */
  update(done: number): void {
    if (!this.enabled || (done & 4095) !== 0) return;
    const now = performance.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.draw(done);
  }

  private draw(done: number): void {
    const width = 30;
    const frac = Math.min(1, done / this.total);
    const full = Math.round(frac * width);
    process.stderr.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${this.total} ${this.what}`);
    this.drawn = true;
  }

  /** Erases the bar. */
  end(): void {
    if (this.drawn) process.stderr.write('\r\x1b[2K');
    this.drawn = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Safety time limit

export class BenchTimeout extends Error {
  constructor(seconds: number, detail: string) {
    super(`Benchmark did not finish within ${seconds} s (--timeout): ${detail}`);
    this.name = 'BenchTimeout';
  }
}

/**
 * A deadline armed once for the whole run (no per-event timers): `expired` turns true and `onExpire` runs when it
 * passes; `race(p)` rejects with {@link BenchTimeout} if `p` has not settled by then.
 */
export class Deadline {
  expired = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly expiredPromise: Promise<never>;
  private rejectExpired: ((err: unknown) => void) | undefined;

  constructor(
    readonly seconds: number,
    private readonly progress: () => string,
    onExpire?: () => void,
  ) {
    this.expiredPromise = new Promise<never>((_, reject) => (this.rejectExpired = reject));
    this.expiredPromise.catch(() => undefined);
    if (seconds > 0) {
      this.timer = setTimeout(() => {
        this.expired = true;
        this.rejectExpired?.(this.error());
        onExpire?.();
      }, seconds * 1000);
      this.timer.unref();
    }
  }

  error(): BenchTimeout {
    return new BenchTimeout(this.seconds, this.progress());
  }

  race<T>(p: PromiseLike<T>): Promise<T> {
    if (this.seconds <= 0) return Promise.resolve(p);
    return Promise.race([p, this.expiredPromise]);
  }

  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The median of a non-empty list of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Closes each (in order, errors ignored), giving up after `ms` so a stuck close never hangs a benchmark. */
export async function closeWithin(ms: number, ...items: ({ close(): Promise<unknown> } | undefined)[]): Promise<void> {
  const all = (async () => {
    for (const it of items) await it?.close().catch(() => undefined);
  })();
  await Promise.race([all, new Promise((resolve) => setTimeout(resolve, ms).unref())]);
}
