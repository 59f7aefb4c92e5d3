/**
 * The generic producer (api.md §8), shared by every driver. A push runs
 * validator → partition selector → serializer (as one pool task), then joins the open batch of
 * its partition. Batches are handed to the driver's TopicWriter, one write in flight per
 * partition, so per-partition order is the order in which events joined batches.
 */
import { BufferOutputArchive } from './archive.js';
import { DefaultSerializer, DefaultValidator, encodeDefaultRecord, type SerializerImpl } from './components.js';
import { DataSegments, type DataLike } from './data-segments.js';
import type { EventBatch, EventID, EventIds, Headers, TopicWriter } from './driver-spi.js';
import { DiasporaError, ErrorCodes, errorMessage, InvalidMetadata } from './errors.js';
import { Deferred, type Future } from './future.js';
import { timerOption } from './timers.js';
import type { Json } from './json.js';
import { Metadata } from './metadata.js';
import { InlineThreadPool, type ThreadPool } from './thread-pool.js';
import type { Closeable } from './open-resources.js';
import type { TopicHandle } from './topic.js';

export type Ordering = 'strict' | 'loose';
export const Ordering = { Strict: 'strict', Loose: 'loose' } as const;

export interface ProducerOptions {
  name?: string;
  batchSize?: number | 'adaptive';
  maxNumBatches?: number;
  ordering?: Ordering;
  threadPool?: ThreadPool;
  lingerMs?: number;
  copyData?: boolean;
  /**
   * Strict ordering only. After an append of a partition failed, every later push to that partition is rejected at
   * once (with the "Not written: an earlier batch … failed" error) until {@link Producer.resume}. For applications
   * that push ahead of confirmations and re-send what failed (forwarding): without it, events pushed after the
   * failure but before the application learnt of it would be written ahead of the re-sent ones.
   */
  haltOnFailure?: boolean;
  options?: Json;
}

export interface PushOptions {
  partition?: number;
  headers?: Headers;
}

export interface Producer {
  readonly name: string;
  readonly topic: TopicHandle;
  readonly batchSize: number | 'adaptive';
  readonly maxNumBatches: number;
  readonly ordering: Ordering;
  readonly threadPool: ThreadPool;
  push(metadata: Metadata | Json, data?: DataLike, o?: PushOptions): Future<EventID>;
  flush(): Future<void>;
  hasCapacity(): boolean;
  ready(): Promise<void>;
  /** Accepts pushes again to the partitions halted by a failed append (option `haltOnFailure`); no-op otherwise. */
  resume(): void;
  /**
   * Flushes, then writes an end-of-stream marker in the given partitions (default: all), which
   * consumers deliver as an event with id NO_MORE_EVENTS. Drivers without such a marker reject.
   */
  markEndOfStream(partitions?: readonly number[]): Promise<void>;
  close(): Promise<void>;
}

/** Adaptive batches close at this many events or bytes even while a write is in progress. */
const ADAPTIVE_MAX_EVENTS = 1024;
const ADAPTIVE_MAX_BYTES = 8 * 1024 * 1024;
/** Queued batches of one partition are merged into one driver write up to this size. */
const MERGE_MAX_BYTES = 2 * 1024 * 1024;

interface Prepared {
  partition: number;
  md: Metadata;
  /** A record from a custom serializer (undefined: default layout written from `md`). */
  record: Buffer | undefined;
  data: DataSegments;
  headers: Headers | undefined;
  future: Deferred<EventID>;
}

/** Resolves a push future lazily: the bigint is only built if somebody reads it. */
function idAt(first: bigint, k: number): EventID {
  return first + BigInt(k);
}

const EMPTY_DATA = DataSegments.EMPTY;

/**
 * The events of one batch: metadata records in `meta` (an own buffer) or, for metadata read from
 * storage whose record sits complete in the buffer it came from (forwarding), borrowed ranges of
 * those buffers: consecutive records of one source buffer form one range, written as they are.
 * `chunks` holds the finished pieces in order; [ownStart, metaPos) of `meta` and `run` are the
 * open ones.
 */
class Batch {
  count = 0;
  /** Bytes of metadata records (all pieces). */
  metaBytes = 0;
  metaPos = 0;
  private ownStart = 0;
  private readonly chunks: Buffer[] = [];
  /** The borrowed range being extended. */
  private run: { buf: Buffer; start: number; end: number } | undefined;
  dataBytes = 0;
  readonly metadataEnds: number[] = [];
  readonly data: DataSegments[] = [];
  headers: (Headers | undefined)[] | undefined;
  readonly futures: Deferred<EventID>[] = [];
  readonly done = new Deferred<void>();
  readonly openedAt = performance.now();
  constructor(public meta: Buffer) {}

  get bytes(): number {
    return this.metaBytes + this.dataBytes;
  }

  private reserve(need: number): void {
    if (this.metaPos + need > this.meta.length) {
      // the bytes before ownStart are already chunks (views of the old buffer): only the open part moves
      const grown = Buffer.allocUnsafe(Math.max(this.meta.length * 2, this.metaPos - this.ownStart + need));
      this.meta.copy(grown, 0, this.ownStart, this.metaPos);
      this.metaPos -= this.ownStart;
      this.ownStart = 0;
      this.meta = grown;
    }
  }

  private endRun(): void {
    const r = this.run;
    if (r !== undefined) {
      this.chunks.push(r.buf.subarray(r.start, r.end));
      this.run = undefined;
    }
  }

  private endOwn(): void {
    if (this.metaPos > this.ownStart) {
      this.chunks.push(this.meta.subarray(this.ownStart, this.metaPos));
      this.ownStart = this.metaPos;
    }
  }

  add(md: Metadata, record: Buffer | undefined, data: DataSegments, headers: Headers | undefined, future: Deferred<EventID>): void {
    const borrowed = record === undefined ? md.storedRecordStart() : -1;
    if (borrowed >= 0) {
      // pass-through of a stored record, not even copied: it extends the run when adjacent
      const buf = md.storedBuffer as Buffer;
      const end = md.storedEnd;
      const r = this.run;
      if (r !== undefined && r.buf === buf && r.end === borrowed) r.end = end;
      else {
        this.endRun();
        this.endOwn();
        this.run = { buf, start: borrowed, end };
      }
      this.metaBytes += end - borrowed;
    } else {
      this.endRun();
      // (reserve() may move the open region: sizes are counted from what each write returns)
      let n: number;
      if (record !== undefined) {
        this.reserve(record.length);
        n = record.copy(this.meta, this.metaPos);
      } else {
        const stored = md.storedLength;
        if (stored > 0) {
          // pass-through: the bytes read from storage, never decoded nor re-encoded
          this.reserve(8 + stored);
          this.meta.writeUInt32LE(stored, this.metaPos);
          this.meta.writeUInt32LE(0, this.metaPos + 4);
          n = 8 + md.copyStoredTo(this.meta, this.metaPos + 8);
        } else {
          const text = md.dump();
          this.reserve(8 + text.length * 3);
          n = encodeDefaultRecord(text, this.meta, this.metaPos);
        }
      }
      this.metaPos += n;
      this.metaBytes += n;
    }
    this.metadataEnds.push(this.metaBytes);
    this.data.push(data);
    this.dataBytes += data.size;
    if (headers !== undefined) {
      this.headers ??= new Array<Headers | undefined>(this.count).fill(undefined);
      this.headers.push(headers);
    } else if (this.headers !== undefined) this.headers.push(undefined);
    this.futures.push(future);
    this.count++;
  }

  /** The metadata pieces, in order (the batch takes no more events). */
  finish(): Buffer[] {
    this.endRun();
    this.endOwn();
    return this.chunks;
  }
}

/** One driver write for consecutive batches of a partition: their buffers become chunks, no copy. */
function mergeBatches(batches: Batch[]): EventBatch {
  if (batches.length === 1) {
    const b = batches[0] as Batch;
    return { count: b.count, metadata: b.finish(), metadataSize: b.metaBytes, metadataEnds: b.metadataEnds, data: b.data, headers: b.headers };
  }
  const chunks: Buffer[] = [];
  const ends: number[] = [];
  const data: DataSegments[] = [];
  const anyHeaders = batches.some((b) => b.headers !== undefined);
  const headers: (Headers | undefined)[] | undefined = anyHeaders ? [] : undefined;
  let pos = 0;
  for (const b of batches) {
    for (const c of b.finish()) chunks.push(c);
    for (const e of b.metadataEnds) ends.push(pos + e);
    pos += b.metaBytes;
    for (const d of b.data) data.push(d);
    if (headers !== undefined) for (let i = 0; i < b.count; i++) headers.push(b.headers?.[i]);
  }
  return { count: ends.length, metadata: chunks, metadataSize: pos, metadataEnds: ends, data, headers };
}

class PartitionState {
  open: Batch | undefined;
  /** Metadata bytes of the last closed batch (initial size of the next buffer). */
  lastMetaSize = 0;
  readonly queued: Batch[] = [];
  /** Appends in flight (at most the writer's maxConcurrentAppends). */
  writes = 0;
  /** haltOnFailure: the error every push is rejected with until resume(). */
  halted: DiasporaError | undefined;
}

export class ProducerImpl implements Producer {
  readonly name: string;
  readonly batchSize: number | 'adaptive';
  readonly maxNumBatches: number;
  readonly ordering: Ordering;
  readonly threadPool: ThreadPool;
  private readonly lingerMs: number;
  private readonly copyData: boolean;
  private readonly haltOnFailure: boolean;
  private readonly inline: boolean;
  private readonly defaultSerializer: boolean;
  private readonly serializer: SerializerImpl;
  private readonly parts: PartitionState[];
  private readonly numPartitions: number;
  /** Appends per partition in flight at once (the writer's maxConcurrentAppends). */
  private readonly maxWrites: number;

  /** Push sequence numbers: `seq` is the next to assign, `watermark` the first not yet settled. */
  private seq = 0;
  private watermark = 0;
  private readonly early = new Map<number, Prepared | null>();
  private barriers: { seq: number; resolve: () => void }[] = [];

  /** Closed (queued or being written) batches not yet finished, over all partitions. */
  private closedBatches = 0;
  private capacityWaiters: (() => void)[] = [];
  private readonly touched = new Set<number>();
  /** Batches handed to the writer and not finished yet. */
  private readonly writing = new Set<Batch>();
  private closed = false;
  private kickScheduled = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** False for the default validator, which accepts everything. */
  private readonly validate: boolean;
  /** A failed writer.sync: every later flush fails with it (see ErrorCodes.SYNC_FAILED). */
  private syncFailure: DiasporaError | undefined;

  constructor(
    readonly topic: TopicHandle,
    private readonly writer: TopicWriter,
    o: ProducerOptions,
    defaultPool: ThreadPool,
    /** The driver's set of open producers: this one is in it until closed. */
    private readonly openSet?: Set<Closeable>,
  ) {
    this.name = o.name ?? '';
    this.batchSize = o.batchSize ?? 'adaptive';
    if (this.batchSize !== 'adaptive' && (!Number.isInteger(this.batchSize) || this.batchSize < 1)) {
      throw new DiasporaError(`Invalid batchSize: ${String(this.batchSize)}`, { code: ErrorCodes.INVALID_ARGUMENT });
    }
    this.maxNumBatches = o.maxNumBatches ?? 2;
    if (!(this.maxNumBatches >= 1)) {
      throw new DiasporaError(`Invalid maxNumBatches: ${String(this.maxNumBatches)}`, { code: ErrorCodes.INVALID_ARGUMENT });
    }
    this.ordering = o.ordering ?? 'strict';
    if (this.ordering !== 'strict' && this.ordering !== 'loose') {
      throw new DiasporaError(`Invalid ordering: ${String(this.ordering)}`, { code: ErrorCodes.INVALID_ARGUMENT });
    }
    this.threadPool = o.threadPool ?? defaultPool;
    this.inline = this.threadPool instanceof InlineThreadPool;
    this.lingerMs = timerOption(o.lingerMs, 5, 'lingerMs');
    this.copyData = o.copyData ?? false;
    this.haltOnFailure = o.haltOnFailure ?? false;
    this.serializer = topic.serializer;
    this.defaultSerializer = topic.serializer instanceof DefaultSerializer;
    this.validate = !(topic.validator instanceof DefaultValidator);
    this.numPartitions = topic.partitions.length;
    this.parts = Array.from({ length: this.numPartitions }, () => new PartitionState());
    this.maxWrites = Math.max(1, writer.maxConcurrentAppends ?? 1);
    openSet?.add(this);
  }

  push(metadata: Metadata | Json, data?: DataLike, o?: PushOptions): Future<EventID> {
    const future = new Deferred<EventID>();
    if (this.closed) {
      future.reject(new DiasporaError('Producer is closed', { code: ErrorCodes.CLOSED }));
      return future;
    }
    const seq = this.seq++;
    if (this.inline) this.prepare(seq, metadata, data, o, future);
    else this.threadPool.pushWork(() => this.prepare(seq, metadata, data, o, future));
    return future;
  }

  private prepare(seq: number, metadata: Metadata | Json, data: DataLike | undefined, o: PushOptions | undefined, future: Deferred<EventID>): void {
    let partition: number;
    let md: Metadata;
    let segs: DataSegments;
    let record: Buffer | undefined;
    try {
      md = metadata instanceof Metadata ? metadata : Metadata.from(metadata);
      segs = data === undefined ? EMPTY_DATA : DataSegments.from(data);
      if (this.copyData && segs.size > 0) segs = new DataSegments(Buffer.from(segs.toBuffer()));
      if (this.validate) {
        try {
          this.topic.validator.validate(md, segs);
        } catch (err) {
          if (err instanceof InvalidMetadata) throw err;
          throw new InvalidMetadata(err instanceof Error ? err.message : String(err), { cause: err });
        }
      }
      partition = this.topic.partitionSelector.selectPartitionFor(md, o?.partition);
      if (!Number.isInteger(partition) || partition < 0 || partition >= this.numPartitions) {
        throw new DiasporaError('Invalid index returned by PartitionSelector', { code: ErrorCodes.INVALID_ARGUMENT });
      }
      if (!this.defaultSerializer) {
        const out = new BufferOutputArchive();
        this.serializer.serialize(out, md);
        record = out.toBuffer();
      } else if (md.storedLength === 0) {
        md.dump(); // serialization errors (lone surrogates) reject this push, not the batch
      }
    } catch (err) {
      future.reject(err);
      this.settle(seq, null);
      return;
    }
    if (seq === this.watermark && this.early.size === 0) {
      // in order (always with the inline pool): straight into the batch, no intermediate object
      this.append(partition, md, record, segs, o?.headers, future);
      this.watermark++;
      if (this.barriers.length > 0) this.releaseBarriers();
      return;
    }
    this.settle(seq, { partition, md, record, data: segs, headers: o?.headers, future });
  }

  /** Records that push `seq` is prepared (or failed, p = null) and appends in the right order. */
  private settle(seq: number, p: Prepared | null): void {
    if (this.ordering === 'loose' && p !== null) {
      this.appendPrepared(p);
      p = null;
    }
    if (seq !== this.watermark) {
      this.early.set(seq, p);
      return;
    }
    if (p !== null) this.appendPrepared(p);
    this.watermark++;
    while (this.early.size > 0 && this.early.has(this.watermark)) {
      const q = this.early.get(this.watermark) as Prepared | null;
      this.early.delete(this.watermark);
      if (q !== null) this.appendPrepared(q);
      this.watermark++;
    }
    if (this.barriers.length > 0) this.releaseBarriers();
  }

  private appendPrepared(p: Prepared): void {
    this.append(p.partition, p.md, p.record, p.data, p.headers, p.future);
  }

  /** Barriers are created in seq order (flush calls), so only the head needs checking. */
  private releaseBarriers(): void {
    while (this.barriers.length > 0 && (this.barriers[0] as { seq: number }).seq <= this.watermark) {
      (this.barriers.shift() as { resolve: () => void }).resolve();
    }
  }

  private append(partition: number, md: Metadata, record: Buffer | undefined, data: DataSegments, headers: Headers | undefined, future: Deferred<EventID>): void {
    const st = this.parts[partition] as PartitionState;
    if (st.halted !== undefined) {
      future.reject(st.halted);
      data.release();
      return;
    }
    let b = st.open;
    if (b === undefined) {
      // sized from the previous batch, so a steady stream never grows (copies) its buffers
      b = st.open = new Batch(Buffer.allocUnsafe(Math.max(this.batchSize === 'adaptive' ? 16384 : Math.min(1 << 20, 160 * this.batchSize), st.lastMetaSize + (st.lastMetaSize >> 3))));
      if (this.batchSize !== 'adaptive') this.armLinger();
    }
    b.add(md, record, data, headers, future);
    if (this.batchSize === 'adaptive') {
      if (b.count >= ADAPTIVE_MAX_EVENTS || b.bytes >= ADAPTIVE_MAX_BYTES) this.closeOpen(partition);
      else if (st.writes === 0) this.scheduleKick();
    } else if (b.count >= this.batchSize) this.closeOpen(partition);
  }

  /**
   * One linger timer per producer (not per batch): when it fires, batches open for at least
   * lingerMs are closed, and it re-arms for the youngest remaining one.
   */
  private armLinger(): void {
    if (this.lingerTimer !== undefined) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      const now = performance.now();
      let youngest = Infinity;
      for (let i = 0; i < this.parts.length; i++) {
        const b = (this.parts[i] as PartitionState).open;
        if (b === undefined) continue;
        if (now - b.openedAt >= this.lingerMs - 0.5) this.closeOpen(i);
        else youngest = Math.min(youngest, b.openedAt);
      }
      if (youngest !== Infinity) this.armLinger();
    }, this.lingerMs);
  }

  /**
   * Group commit: an adaptive batch of an idle partition is closed at the end of the current
   * microtask run, so events pushed synchronously together share one write.
   */
  private scheduleKick(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    queueMicrotask(() => {
      this.kickScheduled = false;
      for (let i = 0; i < this.parts.length; i++) {
        const st = this.parts[i] as PartitionState;
        if (st.open !== undefined && st.writes === 0 && st.queued.length === 0) this.closeOpen(i);
      }
    });
  }

  private closeOpen(partition: number): void {
    const st = this.parts[partition] as PartitionState;
    const b = st.open;
    if (b === undefined) return;
    st.open = undefined;
    st.lastMetaSize = Math.min(b.metaPos, 8 << 20); // own bytes only: borrowed records need no room
    st.queued.push(b);
    this.closedBatches++;
    this.pump(partition);
  }

  private pump(partition: number): void {
    const st = this.parts[partition] as PartitionState;
    while (st.queued.length > 0 && st.writes < this.maxWrites) this.write(partition, st);
  }

  /** Hands the queued batches of a partition (merged up to MERGE_MAX_BYTES) to the writer. */
  private write(partition: number, st: PartitionState): void {
    const batches: Batch[] = [];
    let bytes = 0;
    while (st.queued.length > 0 && (batches.length === 0 || bytes + (st.queued[0] as Batch).bytes <= MERGE_MAX_BYTES)) {
      const b = st.queued.shift() as Batch;
      bytes += b.bytes;
      batches.push(b);
    }
    st.writes++;
    this.touched.add(partition);
    for (const b of batches) this.writing.add(b);
    let result: Promise<EventIds>;
    try {
      result = this.writer.append(partition, mergeBatches(batches));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (ids) => this.finishWrite(partition, batches, ids, undefined),
      (err: unknown) => this.finishWrite(partition, batches, undefined, err),
    );
  }

  private finishWrite(partition: number, batches: Batch[], ids: EventIds | undefined, err: unknown): void {
    const st = this.parts[partition] as PartitionState;
    st.writes--;
    let k = 0;
    for (const b of batches) {
      const futures = b.futures;
      if (ids === undefined) for (const f of futures) f.reject(err);
      else if ('first' in ids) for (let j = 0; j < futures.length; j++) (futures[j] as Deferred<EventID>).resolveLazy(idAt, ids.first, k + j);
      else for (let j = 0; j < futures.length; j++) (futures[j] as Deferred<EventID>).resolve(ids.ids[k + j] as EventID);
      k += futures.length;
      for (const d of b.data) d.release();
      if (ids === undefined) b.done.reject(err);
      else b.done.resolve();
      this.writing.delete(b);
      this.closedBatches--;
    }
    if (ids === undefined && this.ordering === 'strict') this.failBehind(partition, st, err);
    if (this.capacityWaiters.length > 0 && this.hasCapacity()) {
      const ws = this.capacityWaiters;
      this.capacityWaiters = [];
      for (const w of ws) w();
    }
    if (st.queued.length > 0) this.pump(partition);
    else if (st.open !== undefined && this.batchSize === 'adaptive' && st.writes === 0) this.closeOpen(partition);
  }

  /**
   * Strict ordering: an append failed, so the events of the partition that were pushed before we
   * knew and are not written yet (queued batches, the open batch) fail too: writing them would
   * store them ahead of the failed ones, which the application will push again.
   */
  private failBehind(partition: number, st: PartitionState, cause: unknown): void {
    const err = new DiasporaError(`Not written: an earlier batch of partition ${partition} failed (${cause instanceof Error ? cause.message : String(cause)})`, {
      code: cause instanceof DiasporaError ? cause.code : ErrorCodes.GENERIC,
      cause,
    });
    if (this.haltOnFailure) st.halted = err;
    const open = st.open;
    st.open = undefined;
    for (const b of st.queued.splice(0)) {
      this.closedBatches--;
      this.failBatch(b, err);
    }
    if (open !== undefined) this.failBatch(open, err);
  }

  private failBatch(b: Batch, err: unknown): void {
    for (const f of b.futures) f.reject(err);
    for (const d of b.data) d.release();
    b.done.reject(err);
  }

  /**
   * Forwarding between topics of one driver: appends events already encoded by this topic's serializer (a
   * {@link StoredRun}'s batch) to `partition` as one batch, with no validation, partition selection or serialization,
   * after everything pushed to that partition before. A later flush() makes them durable like pushed events.
   */
  async appendStored(partition: number, batch: EventBatch): Promise<EventIds> {
    if (this.closed) throw new DiasporaError('Producer is closed', { code: ErrorCodes.CLOSED });
    const st = this.parts[partition];
    if (st === undefined) throw new DiasporaError(`Invalid partition ${partition}`, { code: ErrorCodes.INVALID_ARGUMENT });
    if (st.open !== undefined || st.queued.length > 0 || st.writes > 0) await this.flush();
    if (st.halted !== undefined) throw st.halted;
    this.touched.add(partition);
    st.writes++;
    try {
      const appended = this.writer.append(partition, batch);
      // the caller waits for this append: nothing will join it, so the writer need not linger (kafka: linger.ms)
      this.writer.sendNow?.();
      return await appended;
    } finally {
      st.writes--;
      if (st.queued.length > 0) this.pump(partition);
    }
  }

  hasCapacity(): boolean {
    return this.closedBatches < this.maxNumBatches;
  }

  resume(): void {
    for (const st of this.parts) st.halted = undefined;
  }

  ready(): Promise<void> {
    if (this.hasCapacity()) return Promise.resolve();
    this.writer.sendNow?.();
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  flush(): Future<void> {
    const result = new Deferred<void>();
    const target = this.seq;
    void (async () => {
      if (this.watermark < target) await new Promise<void>((resolve) => this.barriers.push({ seq: target, resolve }));
      const pending: Promise<void>[] = [];
      for (let i = 0; i < this.parts.length; i++) {
        this.closeOpen(i);
        const st = this.parts[i] as PartitionState;
        for (const b of st.queued) pending.push(b.done.wait());
      }
      this.writer.sendNow?.();
      for (const b of this.writing) pending.push(b.done.wait() as Promise<void>);
      const outcomes = await Promise.allSettled(pending);
      const failed = outcomes.find((o) => o.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      if (this.syncFailure !== undefined) throw this.syncFailure;
      const touched = new Set(this.touched);
      this.touched.clear();
      if (touched.size > 0) {
        try {
          await this.writer.sync(touched);
        } catch (err) {
          // a retried fsync may report success for pages the kernel already dropped: this flush and every later one
          // fail, so that nobody takes events written so far for durable
          this.syncFailure =
            err instanceof DiasporaError && err.code === ErrorCodes.SYNC_FAILED
              ? err
              : new DiasporaError(`Events could not be made durable: ${errorMessage(err)}`, { code: ErrorCodes.SYNC_FAILED, cause: err });
          throw this.syncFailure;
        }
      }
    })().then(
      () => result.resolve(),
      (err: unknown) => result.reject(err),
    );
    return result;
  }

  async markEndOfStream(partitions?: readonly number[]): Promise<void> {
    if (this.closed) throw new DiasporaError('Producer is closed', { code: ErrorCodes.CLOSED });
    if (this.writer.markEndOfStream === undefined) {
      throw new DiasporaError(`The ${this.topic.driver.type} driver has no end-of-stream marker`, { code: ErrorCodes.INVALID_ARGUMENT });
    }
    await this.flush();
    await this.writer.markEndOfStream(partitions);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.openSet?.delete(this);
    if (this.lingerTimer !== undefined) {
      // close() flushes every open batch: the timer has nothing left to do
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
    }
    try {
      await this.flush();
    } finally {
      await this.writer.close();
    }
  }
}
