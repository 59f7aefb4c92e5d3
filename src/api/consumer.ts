/**
 * The generic consumer (api.md §9), shared by every driver. Drivers supply a ConsumerSource that
 * fetches batches of decoded events and persists positions; this class owns the pull queue,
 * acknowledgement tracking, batched commits, `process()` and iteration.
 *
 * Claiming: a pull future takes an event only while somebody waits on it, so a pull whose timed
 * wait expired and that nobody waits on any more never swallows an event.
 */
import type { DataAllocator, DataSelector } from './data-selection.js';
import type { ConsumerSource, EventID, SourceEvent, StartFrom, StoredRun } from './driver-spi.js';
import type { Event, EventOwner } from './event.js';
export type { Event } from './event.js';
import { DiasporaError, ErrorCodes, StopEventProcessor } from './errors.js';
import { Deferred, type Future } from './future.js';
import { timerOption } from './timers.js';
import type { Json } from './json.js';
import type { PartitionInfo } from './metadata.js';
import { InlineThreadPool, type ThreadPool } from './thread-pool.js';
import type { TopicHandle } from './topic.js';
import type { Closeable } from './open-resources.js';

export const NO_MORE_EVENTS: EventID = 0xffff_ffff_ffff_ffffn;
export const NoMoreEvents = NO_MORE_EVENTS;

/** Whether `e` is the end-of-stream marker; cheaper than comparing `e.id` (no bigint for ordinary events). */
export function isNoMoreEvents(e: Event): boolean {
  return (e as { idNumber?: number }).idNumber === undefined && e.id === NO_MORE_EVENTS;
}

/** The smallest read-ahead, in events (see maxFetch). */
const MIN_FETCH_EVENTS = 1024;
/**
 * Read-ahead while data flows (see afterTake): up to this many fetches' worth of events buffered,
 * and no more data bytes than READ_AHEAD_BYTES (one fetch is always allowed). Files, 4 KiB events,
 * 9 paired runs each: 1 → 2 fetches gave 498 → 549 k events/s (8 of 9 pairs better), 2 → 4 gave
 * 557 → 607 k: the reads overlap the consumer's work instead of waiting for an empty buffer.
 */
const READ_AHEAD_FETCHES = 4;
const READ_AHEAD_BYTES = 32 * 1024 * 1024;

export interface ConsumerOptions {
  batchSize?: number | 'adaptive';
  maxNumBatches?: number;
  threadPool?: ThreadPool;
  dataSelector?: DataSelector;
  dataAllocator?: DataAllocator;
  targets?: number[];
  startFrom?: StartFrom;
  /** Start these partitions at these ids instead (e.g. to re-read a topic's tail); others follow startFrom. */
  startAt?: ReadonlyMap<number, EventID>;
  ackIntervalMs?: number;
  options?: Json;
}

export interface ProcessOptions {
  timeoutMs?: number;
  maxEvents?: number;
  threadPool?: ThreadPool;
  signal?: AbortSignal;
  stopWhenIdle?: boolean;
}

export interface Consumer extends AsyncIterable<Event> {
  readonly name: string;
  readonly topic: TopicHandle;
  readonly targets: readonly number[];
  readonly batchSize: number | 'adaptive';
  readonly maxNumBatches: number;
  readonly threadPool: ThreadPool;
  readonly dataSelector: DataSelector | undefined;
  readonly dataAllocator: DataAllocator | undefined;
  pull(): Future<Event>;
  /**
   * Up to `max` events at once, in delivery order: what is available now, or — when nothing is —
   * the first events to arrive within `timeoutMs` (resolves [] after it). Cheaper than one pull
   * per event; never takes events ahead of earlier pending pulls.
   */
  pullBatch(max: number, timeoutMs: number): Promise<Event[]>;
  process(fn: (e: Event) => void | Promise<void>, o?: ProcessOptions): Promise<number>;
  events(o?: { idleTimeoutMs?: number }): AsyncIterable<Event>;
  commit(): Promise<void>;
  /**
   * Acknowledges many delivered events at once (cheaper than acknowledge() on each: no future
   * per event); positions are persisted on the usual schedule or by commit().
   */
  acknowledgeMany(events: readonly Event[]): void;
  /** The current end (next id to be written) of each assigned partition: for lag and stop-at-end. */
  endPositions(): Promise<Map<number, EventID>>;
  /** The next id this consumer will deliver in each assigned partition. */
  nextPositions(): Promise<Map<number, EventID>>;
  close(): Promise<void>;
  unsubscribe(): Promise<void>;
}

/** A pull: takes an event only while somebody waits on it (claim-on-wait). */
class PullFuture extends Deferred<Event> {
  queued = false;
  constructor(
    private readonly consumer: ConsumerImpl,
    readonly seq: number,
  ) {
    super();
  }
  protected override claim(): void {
    this.consumer.claimPull(this);
  }
  protected override abandon(): void {
    this.consumer.cancelPull(this);
  }
}

/** An event's id as a number (stored ids stay far below 2^53, so no bigint is needed to track them). */
function idNumber(e: { idNumber?: number; id: EventID }): number {
  return e.idNumber ?? Number(e.id);
}

/**
 * Delivered and acknowledged ids of one partition (delivery is in increasing id order). Ids are
 * tracked as numbers: building a bigint per event was a measurable cost at 500k events/s.
 */
class AckTracker {
  private unacked: number[] = [];
  private head = 0;
  private readonly acked = new Set<number>();
  private last: number | undefined;
  private lastEvent: SourceEvent | undefined;
  waiters: { id: number; future: Deferred<void> }[] = [];
  dirty = false;

  /** `lastOnly`: anonymous consumers persist nothing, so only the last delivered event matters. */
  constructor(private readonly lastOnly: boolean) {}

  delivered(e: SourceEvent): void {
    if (isNoMoreEvents(e)) return;
    if (this.lastOnly) {
      this.lastEvent = e; // the id is only computed if a position is asked for
      return;
    }
    const id = idNumber(e);
    this.unacked.push(id);
    this.last = id;
  }

  /** Events first … first + count − 1 were delivered (stored runs: no event objects). */
  deliveredRange(first: number, count: number): void {
    if (count <= 0) return;
    this.lastEvent = undefined;
    this.last = first + count - 1;
    if (this.lastOnly) return;
    for (let i = 0; i < count; i++) this.unacked.push(first + i);
  }

  /** Last delivered id (undefined before any delivery). */
  lastId(): EventID | undefined {
    if (this.lastOnly) return this.lastEvent !== undefined ? this.lastEvent.id : this.last === undefined ? undefined : BigInt(this.last);
    return this.last === undefined ? undefined : BigInt(this.last);
  }

  ack(id: number): boolean {
    // in-order acknowledgement (the common case): no set bookkeeping
    if (this.head < this.unacked.length && id === this.unacked[this.head] && this.acked.size === 0) {
      this.head++;
      this.dirty = true;
      this.compact();
      return true;
    }
    if (this.last === undefined || id > this.last || this.acked.has(id)) return false;
    // ids below the head were already acknowledged (and dropped from the set)
    if (this.head >= this.unacked.length || id < (this.unacked[this.head] as number)) return false;
    this.acked.add(id);
    while (this.head < this.unacked.length && this.acked.has(this.unacked[this.head] as number)) {
      this.acked.delete(this.unacked[this.head] as number);
      this.head++;
      this.dirty = true;
    }
    this.compact();
    return true;
  }

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.unacked.length) {
      this.unacked = this.unacked.slice(this.head);
      this.head = 0;
    }
  }

  /** Next id to deliver after a restart. */
  position(): number | undefined {
    if (this.last === undefined) return undefined;
    return this.head < this.unacked.length ? (this.unacked[this.head] as number) : this.last + 1;
  }
}

export class ConsumerImpl implements Consumer, EventOwner {
  readonly targets: readonly number[];
  readonly batchSize: number | 'adaptive';
  readonly maxNumBatches: number;
  readonly threadPool: ThreadPool;
  readonly dataSelector: DataSelector | undefined;
  readonly dataAllocator: DataAllocator | undefined;
  private readonly ackIntervalMs: number;
  private readonly fetchSize: number;

  private buffer: SourceEvent[] = [];
  private bufHead = 0;
  private waiting: PullFuture[] = [];
  private pullSeq = 0;
  private fetching = false;
  /** The last fetch returned events: more may be ready, so read ahead (sources may cut a fetch short, e.g. at a byte bound). */
  private flowing = false;
  /** Buffered events below which the next fetch starts (READ_AHEAD_FETCHES, READ_AHEAD_BYTES); set per fetch. */
  private readAheadEvents = 0;
  /** The error of a read-ahead fetch, kept for the next pull (no fetch until it is delivered). */
  private readAheadError: { err: unknown } | undefined;
  private readonly abort = new AbortController();
  private closed = false;

  private readonly acks = new Map<number, AckTracker>();
  private commitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> | undefined;
  private commitAgain = false;

  constructor(
    readonly name: string,
    readonly topic: TopicHandle,
    private readonly source: ConsumerSource,
    targets: readonly number[],
    o: ConsumerOptions,
    defaultPool: ThreadPool,
    /** The driver's set of open consumers: this one is in it until closed. */
    private readonly openSet?: Set<Closeable>,
  ) {
    openSet?.add(this);
    this.targets = targets;
    this.batchSize = o.batchSize ?? 'adaptive';
    this.maxNumBatches = o.maxNumBatches ?? 2;
    this.threadPool = o.threadPool ?? defaultPool;
    this.dataSelector = o.dataSelector;
    this.dataAllocator = o.dataAllocator;
    this.ackIntervalMs = timerOption(o.ackIntervalMs, 1000, 'ackIntervalMs');
    this.fetchSize = this.batchSize === 'adaptive' ? 512 : this.batchSize;
    source.onRevoke?.((partitions) => this.dropBuffered(partitions));
  }

  // -------------------------------------------------------------------------------------------
  // Pulling

  pull(): Future<Event> {
    const future = new PullFuture(this, this.pullSeq++);
    if (this.closed) future.reject(new DiasporaError('Consumer is closed', { code: ErrorCodes.CLOSED }));
    return future;
  }

  /** Somebody waits on `f`: give it an event now if it is first in line, else queue it in call order. */
  claimPull(f: PullFuture): void {
    if (f.completed() || f.queued) return;
    if (this.closed) {
      f.reject(new DiasporaError('Consumer is closed', { code: ErrorCodes.CLOSED }));
      return;
    }
    if (this.waiting.length === 0 && this.bufHead < this.buffer.length) {
      f.resolve(this.deliver(this.buffer[this.bufHead++] as SourceEvent));
      this.afterTake();
      return;
    }
    let i = this.waiting.length;
    while (i > 0 && (this.waiting[i - 1] as PullFuture).seq > f.seq) i--;
    this.waiting.splice(i, 0, f);
    f.queued = true;
    this.dispatch();
  }

  async pullBatch(max: number, timeoutMs: number): Promise<Event[]> {
    const out: Event[] = [];
    if (this.closed) throw new DiasporaError('Consumer is closed', { code: ErrorCodes.CLOSED });
    if (this.waiting.length === 0) {
      while (out.length < max && this.bufHead < this.buffer.length) out.push(this.deliver(this.buffer[this.bufHead++] as SourceEvent));
      this.afterTake();
      if (out.length > 0) return out;
    }
    // nothing buffered: one ordinary pull waits for the next event, then take what came with it
    const f = this.pull();
    const first = await f.wait(timeoutMs);
    if (first === undefined) return out;
    out.push(first);
    if (this.waiting.length === 0) {
      while (out.length < max && this.bufHead < this.buffer.length) out.push(this.deliver(this.buffer[this.bufHead++] as SourceEvent));
      this.afterTake();
    }
    return out;
  }

  /** Withdraws a pull that nobody waits for any more. */
  cancelPull(f: Future<Event>): void {
    const i = this.waiting.indexOf(f as PullFuture);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      (f as PullFuture).queued = false;
    }
  }

  private dispatch(): void {
    while (this.waiting.length > 0 && this.bufHead < this.buffer.length) {
      const f = this.waiting.shift() as PullFuture;
      f.queued = false;
      f.resolve(this.deliver(this.buffer[this.bufHead++] as SourceEvent));
    }
    // a read-ahead failed while nobody waited: the first pull after the events before it gets it
    if (this.readAheadError !== undefined && this.waiting.length > 0) {
      const f = this.waiting.shift() as PullFuture;
      f.queued = false;
      const err = this.readAheadError.err;
      this.readAheadError = undefined;
      f.reject(err);
    }
    this.afterTake();
  }

  /** Recycles the buffer and fetches more when needed (or ahead of time after a full fetch). */
  private afterTake(): void {
    if (this.bufHead >= this.buffer.length && this.bufHead > 0) {
      this.buffer = [];
      this.bufHead = 0;
    }
    if (this.fetching || this.closed || this.readAheadError !== undefined) return;
    const buffered = this.buffer.length - this.bufHead;
    if (this.waiting.length > 0 && buffered === 0) this.fetch(true);
    // read ahead while data flows, bounded (readAheadEvents)
    else if (this.flowing && buffered < this.readAheadEvents) this.fetch(false);
  }

  /**
   * Events per fetch: the batch size times the prefetch depth (maxNumBatches, at most 4), and at
   * least MIN_FETCH_EVENTS. A fetch returns what is available at once, so a larger one adds no
   * latency; it halves the read round trips of small batches (files: 128 × 4 KiB events gave
   * 330–450 k events/s, 1024 gave 520–700 k). Sources bound a fetch's bytes themselves.
   */
  private get maxFetch(): number {
    return Math.max(MIN_FETCH_EVENTS, this.fetchSize * Math.max(1, Math.min(this.maxNumBatches, 4)));
  }

  private fetch(wait: boolean): void {
    this.fetching = true;
    const max = this.maxFetch;
    this.source.fetch(max, this.abort.signal, wait).then(
      (events) => {
        this.fetching = false;
        this.flowing = events.length > 0;
        if (events.length > 0) {
          // the read-ahead bound, from the mean data size of these events
          let bytes = 0;
          for (const e of events) bytes += e.data.size;
          const byBytes = Math.floor(READ_AHEAD_BYTES / Math.max(1, bytes / events.length));
          this.readAheadEvents = Math.max(1, Math.min(READ_AHEAD_FETCHES * this.maxFetch, byBytes));
          if (this.bufHead >= this.buffer.length) {
            this.buffer = events;
            this.bufHead = 0;
          } else {
            // drop the delivered prefix: while reads keep ahead of the consumer the buffer never
            // empties, and it would otherwise hold every event delivered since it last did
            if (this.bufHead > 0) {
              this.buffer = this.buffer.slice(this.bufHead);
              this.bufHead = 0;
            }
            for (const e of events) this.buffer.push(e);
          }
        }
        if (!this.closed) this.dispatch();
      },
      (err: unknown) => {
        this.fetching = false;
        this.flowing = false;
        // a read error rejects one pull without advancing (the next pull retries); a read-ahead's
        // error waits for the first pull after the events already buffered
        const f = this.bufHead < this.buffer.length ? undefined : this.waiting.shift();
        if (f !== undefined) {
          f.queued = false;
          f.reject(err);
        } else this.readAheadError = { err };
        if (!this.closed && this.waiting.length > 0) setTimeout(() => this.dispatch(), 10);
      },
    );
  }

  /** Whether {@link pullStored} works: the source can hand out stored runs. */
  get canPullStored(): boolean {
    return this.source.fetchStored !== undefined;
  }

  /**
   * Forwarding between topics of one driver: up to `max` events as stored runs (no event objects), waiting up to
   * `timeoutMs` (or until `stop` aborts) for the first; [] when none came. The runs' events count as delivered:
   * acknowledge them with {@link acknowledgeStored}. Not to be mixed with pull() on the same consumer.
   */
  async pullStored(max: number, timeoutMs: number, stop?: AbortSignal): Promise<StoredRun[]> {
    if (this.closed) throw new DiasporaError('Consumer is closed', { code: ErrorCodes.CLOSED });
    const fetchStored = this.source.fetchStored?.bind(this.source);
    if (fetchStored === undefined) throw new DiasporaError('This source cannot hand out stored events', { code: ErrorCodes.INVALID_ARGUMENT });
    if (this.fetching || this.bufHead < this.buffer.length) {
      throw new DiasporaError('pullStored() cannot follow pull() on the same consumer', { code: ErrorCodes.INVALID_ARGUMENT });
    }
    // one signal for close(), the timeout and `stop`, unlinked afterwards (AbortSignal.any would leave a dependent
    // signal on the consumer's long-lived one per call in Node 20/22: nodejs/node#55351, #64476)
    const ended = new AbortController();
    const end = (): void => ended.abort();
    const timer = setTimeout(end, Math.max(0, timeoutMs));
    this.abort.signal.addEventListener('abort', end);
    stop?.addEventListener('abort', end);
    if (this.abort.signal.aborted || stop?.aborted === true) end();
    let runs: StoredRun[];
    try {
      runs = await fetchStored(max, ended.signal, true);
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener('abort', end);
      stop?.removeEventListener('abort', end);
    }
    for (const r of runs) {
      let t = this.acks.get(r.partitionIndex);
      if (t === undefined) this.acks.set(r.partitionIndex, (t = new AckTracker(this.name === '')));
      t.deliveredRange(r.first, r.batch.count);
    }
    return runs;
  }

  /** Acknowledges the events of a stored run (in delivery order, like acknowledgeMany). */
  acknowledgeStored(run: StoredRun): void {
    if (this.name === '') return;
    const t = this.acks.get(run.partitionIndex);
    if (t === undefined) return;
    let any = false;
    for (let i = 0; i < run.batch.count; i++) if (t.ack(run.first + i)) any = true;
    if (any) this.scheduleCommit();
  }

  /** Drops the fetched, undelivered events of revoked partitions; returns the first id dropped of each. */
  private dropBuffered(partitions: ReadonlySet<number>): Map<number, EventID> {
    const first = new Map<number, EventID>();
    const kept: SourceEvent[] = [];
    for (let i = this.bufHead; i < this.buffer.length; i++) {
      const e = this.buffer[i] as SourceEvent;
      if (!partitions.has(e.partitionIndex)) kept.push(e);
      else if (!first.has(e.partitionIndex)) first.set(e.partitionIndex, e.id);
    }
    if (first.size > 0) {
      this.buffer = kept;
      this.bufHead = 0;
    }
    return first;
  }

  private deliver(e: SourceEvent): Event {
    e.owner = this;
    let t = this.acks.get(e.partitionIndex);
    if (t === undefined) this.acks.set(e.partitionIndex, (t = new AckTracker(this.name === '')));
    t.delivered(e);
    return e;
  }

  partitionInfo(partition: number): PartitionInfo {
    return this.topic.partitions[partition] ?? { partition_id: partition };
  }

  // -------------------------------------------------------------------------------------------
  // Acknowledgement and commits

  acknowledgeEvent(partition: number, id: EventID): Future<void> {
    const future = new Deferred<void>();
    const t = this.acks.get(partition);
    if (t === undefined || id === NO_MORE_EVENTS || !t.ack(Number(id))) {
      future.resolve(); // unknown, already acknowledged, or the end marker: nothing to persist
      return future;
    }
    if (this.name === '') {
      future.resolve(); // anonymous consumers persist nothing
      return future;
    }
    t.waiters.push({ id: Number(id), future });
    this.scheduleCommit();
    return future;
  }

  acknowledgeMany(events: readonly Event[]): void {
    if (this.name === '') return;
    let any = false;
    for (const e of events) {
      const t = this.acks.get(e.partitionIndex);
      if (t !== undefined && t.ack(idNumber(e as SourceEvent))) any = true;
    }
    if (any) this.scheduleCommit();
  }

  private scheduleCommit(): void {
    if (this.commitTimer !== undefined) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      void this.commit().catch(() => undefined);
    }, this.ackIntervalMs);
  }

  commit(): Promise<void> {
    if (this.committing !== undefined) {
      this.commitAgain = true;
      return this.committing;
    }
    this.committing = this.doCommit().finally(() => {
      this.committing = undefined;
      if (this.commitAgain) {
        this.commitAgain = false;
        void this.commit().catch(() => undefined);
      }
    });
    return this.committing;
  }

  private async doCommit(): Promise<void> {
    const positions = new Map<number, EventID>();
    const settled: { t: AckTracker; upTo: number }[] = [];
    for (const [p, t] of this.acks) {
      if (!t.dirty) continue;
      const pos = t.position();
      if (pos === undefined) continue;
      t.dirty = false;
      positions.set(p, BigInt(pos));
      settled.push({ t, upTo: pos });
    }
    if (positions.size === 0) return;
    try {
      await this.source.commit(positions);
    } catch (err) {
      for (const { t } of settled) t.dirty = true;
      this.scheduleCommit();
      throw err;
    }
    for (const { t, upTo } of settled) {
      const keep: typeof t.waiters = [];
      for (const w of t.waiters) {
        if (w.id < upTo) w.future.resolve();
        else keep.push(w);
      }
      t.waiters = keep;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Processing and iteration

  async process(fn: (e: Event) => void | Promise<void>, o: ProcessOptions = {}): Promise<number> {
    const timeoutMs = o.timeoutMs ?? 5000;
    const maxEvents = o.maxEvents ?? Infinity;
    const pool = o.threadPool ?? this.threadPool;
    const inline = pool instanceof InlineThreadPool;
    const signal = o.signal;
    let started = 0;
    let processed = 0;
    let stop = false;
    let failure: { err: unknown } | undefined;
    const inflight = new Set<Promise<void>>();
    const limit = Math.max(1, pool.threadCount * 2);

    const run = async (e: Event): Promise<void> => {
      try {
        await fn(e);
        processed++;
      } catch (err) {
        stop = true;
        if (!(err instanceof StopEventProcessor) && failure === undefined) failure = { err };
      }
    };

    const abortWait = signal === undefined ? undefined : new Promise<undefined>((resolve) => {
      if (signal.aborted) resolve(undefined);
      else signal.addEventListener('abort', () => resolve(undefined), { once: true });
    });

    while (!stop && started < maxEvents && !(signal?.aborted ?? false) && !this.closed) {
      const pending = this.pull();
      const waited = pending.wait(timeoutMs);
      let e: Event | undefined;
      try {
        e = await (abortWait === undefined ? waited : Promise.race([waited, abortWait]));
      } catch (err) {
        if (this.closed) break;
        throw err;
      }
      if (e === undefined && signal?.aborted) {
        // withdraw the pull; an event it already took is still processed
        this.cancelPull(pending);
        if (!pending.completed()) break;
        e = await pending.wait(0);
        if (e === undefined) break;
      }
      if (e === undefined) {
        if (o.stopWhenIdle) break;
        continue;
      }
      if (isNoMoreEvents(e)) break;
      started++;
      if (inline) {
        await run(e);
      } else {
        while (inflight.size >= limit) await Promise.race(inflight);
        const ev = e;
        let done!: () => void;
        const p = new Promise<void>((resolve) => (done = resolve));
        try {
          pool.pushWork(() => run(ev).then(done));
        } catch (err) {
          // the pool refused the task (e.g. closed): process() ends with that error
          failure ??= { err };
          break;
        }
        inflight.add(p);
        const settle = (): void => void inflight.delete(p);
        p.then(settle, settle);
      }
    }
    await Promise.all(inflight);
    if (failure !== undefined) throw failure.err;
    return processed;
  }

  events(o: { idleTimeoutMs?: number } = {}): AsyncIterable<Event> {
    const idle = o.idleTimeoutMs ?? -1;
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        while (!self.closed) {
          let e: Event | undefined;
          try {
            e = await self.pull().wait(idle);
          } catch (err) {
            if (self.closed) return;
            throw err;
          }
          if (e === undefined || isNoMoreEvents(e)) return;
          yield e;
        }
      },
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<Event> {
    return this.events()[Symbol.asyncIterator]();
  }

  endPositions(): Promise<Map<number, EventID>> {
    return this.source.endPositions();
  }

  async nextPositions(): Promise<Map<number, EventID>> {
    const next = await this.source.startPositions();
    for (const [p, t] of this.acks) {
      const last = t.lastId();
      if (last !== undefined) next.set(p, last + 1n);
    }
    // ids may have gaps (kafka transaction markers): once this consumer delivered everything the source handed out
    // for a partition, its next event comes no earlier than where the source reads
    if (this.bufHead >= this.buffer.length) {
      for (const [p, { at, handedOut }] of this.source.readPositions?.() ?? []) {
        const n = next.get(p) ?? 0n;
        if (at > n && (handedOut === undefined || n >= handedOut)) next.set(p, at);
      }
    }
    return next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.openSet?.delete(this);
    this.abort.abort();
    for (const f of this.waiting) f.reject(new DiasporaError('Consumer is closed', { code: ErrorCodes.CLOSED }));
    this.waiting = [];
    if (this.commitTimer !== undefined) clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    try {
      if (this.committing !== undefined) await this.committing.catch(() => undefined);
      await this.commit();
    } finally {
      for (const t of this.acks.values()) {
        for (const w of t.waiters) w.future.resolve();
        t.waiters = [];
      }
      await this.source.close();
    }
  }

  unsubscribe(): Promise<void> {
    return this.close();
  }
}
