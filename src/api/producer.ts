/**
 * The generic producer (api.md §8), shared by every driver. A push runs
 * validator → partition selector → serializer (as one pool task), then joins the open batch of
 * its partition. Batches are handed to the driver's TopicWriter, one write in flight per
 * partition, so per-partition order is the order in which events joined batches.
 */
import { BufferOutputArchive } from './archive.js';
import { DefaultSerializer, encodeDefaultRecord, type SerializerImpl } from './components.js';
import { DataSegments, type DataLike } from './data-segments.js';
import type { EventBatch, EventID, EventIds, Headers, TopicWriter } from './driver-spi.js';
import { DiasporaError, ErrorCodes, InvalidMetadata } from './errors.js';
import { Deferred, type Future } from './future.js';
import type { Json } from './json.js';
import { Metadata } from './metadata.js';
import { InlineThreadPool, type ThreadPool } from './thread-pool.js';
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
  close(): Promise<void>;
}

/** Adaptive batches close at this many events or bytes even while a write is in progress. */
const ADAPTIVE_MAX_EVENTS = 1024;
const ADAPTIVE_MAX_BYTES = 8 * 1024 * 1024;
/** Queued batches of one partition are merged into one driver write up to this size. */
const MERGE_MAX_BYTES = 8 * 1024 * 1024;

interface Prepared {
  partition: number;
  /** Canonical metadata text (default serializer) or a serialized record (custom serializer). */
  text: string | undefined;
  record: Buffer | undefined;
  data: DataSegments;
  headers: Headers | undefined;
  future: Deferred<EventID>;
}

class Batch {
  count = 0;
  metaPos = 0;
  dataBytes = 0;
  readonly metadataEnds: number[] = [];
  readonly data: DataSegments[] = [];
  headers: (Headers | undefined)[] | undefined;
  readonly futures: Deferred<EventID>[] = [];
  readonly done = new Deferred<void>();
  constructor(public meta: Buffer) {}

  get bytes(): number {
    return this.metaPos + this.dataBytes;
  }

  add(p: Prepared): void {
    const need = p.text !== undefined ? 8 + p.text.length * 3 : (p.record as Buffer).length;
    if (this.metaPos + need > this.meta.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.meta.length * 2, this.metaPos + need));
      this.meta.copy(grown, 0, 0, this.metaPos);
      this.meta = grown;
    }
    if (p.text !== undefined) this.metaPos += encodeDefaultRecord(p.text, this.meta, this.metaPos);
    else this.metaPos += (p.record as Buffer).copy(this.meta, this.metaPos);
    this.metadataEnds.push(this.metaPos);
    this.data.push(p.data);
    this.dataBytes += p.data.size;
    if (p.headers !== undefined) {
      this.headers ??= new Array<Headers | undefined>(this.count).fill(undefined);
      this.headers.push(p.headers);
    } else if (this.headers !== undefined) this.headers.push(undefined);
    this.futures.push(p.future);
    this.count++;
  }

  toEventBatch(): EventBatch {
    return {
      count: this.count,
      metadata: this.meta.subarray(0, this.metaPos),
      metadataEnds: this.metadataEnds,
      data: this.data,
      headers: this.headers,
    };
  }
}

/** Concatenates consecutive batches of one partition into one driver write. */
function mergeBatches(batches: Batch[]): EventBatch {
  if (batches.length === 1) return (batches[0] as Batch).toEventBatch();
  const size = batches.reduce((n, b) => n + b.metaPos, 0);
  const meta = Buffer.allocUnsafe(size);
  const ends: number[] = [];
  const data: DataSegments[] = [];
  const anyHeaders = batches.some((b) => b.headers !== undefined);
  const headers: (Headers | undefined)[] | undefined = anyHeaders ? [] : undefined;
  let pos = 0;
  for (const b of batches) {
    b.meta.copy(meta, pos, 0, b.metaPos);
    for (const e of b.metadataEnds) ends.push(pos + e);
    pos += b.metaPos;
    data.push(...b.data);
    if (headers !== undefined) headers.push(...(b.headers ?? new Array<undefined>(b.count).fill(undefined)));
  }
  return { count: ends.length, metadata: meta, metadataEnds: ends, data, headers };
}

class PartitionState {
  open: Batch | undefined;
  readonly queued: Batch[] = [];
  writing = false;
  linger: NodeJS.Timeout | undefined;
}

export class ProducerImpl implements Producer {
  readonly name: string;
  readonly batchSize: number | 'adaptive';
  readonly maxNumBatches: number;
  readonly ordering: Ordering;
  readonly threadPool: ThreadPool;
  private readonly lingerMs: number;
  private readonly copyData: boolean;
  private readonly inline: boolean;
  private readonly defaultSerializer: boolean;
  private readonly serializer: SerializerImpl;
  private readonly parts: PartitionState[];
  private readonly numPartitions: number;

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

  constructor(
    readonly topic: TopicHandle,
    private readonly writer: TopicWriter,
    o: ProducerOptions,
    defaultPool: ThreadPool,
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
    this.lingerMs = o.lingerMs ?? 5;
    this.copyData = o.copyData ?? false;
    this.serializer = topic.serializer;
    this.defaultSerializer = topic.serializer instanceof DefaultSerializer;
    this.numPartitions = topic.partitions.length;
    this.parts = Array.from({ length: this.numPartitions }, () => new PartitionState());
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
    let p: Prepared | null = null;
    try {
      const md = Metadata.from(metadata);
      let segs = DataSegments.from(data);
      if (this.copyData && segs.size > 0) segs = new DataSegments(Buffer.from(segs.toBuffer()));
      try {
        this.topic.validator.validate(md, segs);
      } catch (err) {
        if (err instanceof InvalidMetadata) throw err;
        throw new InvalidMetadata(err instanceof Error ? err.message : String(err), { cause: err });
      }
      const partition = this.topic.partitionSelector.selectPartitionFor(md, o?.partition);
      if (!Number.isInteger(partition) || partition < 0 || partition >= this.numPartitions) {
        throw new DiasporaError('Invalid index returned by PartitionSelector', { code: ErrorCodes.INVALID_ARGUMENT });
      }
      let text: string | undefined;
      let record: Buffer | undefined;
      if (this.defaultSerializer) text = md.dump();
      else {
        const out = new BufferOutputArchive();
        this.serializer.serialize(out, md);
        record = out.toBuffer();
      }
      p = { partition, text, record, data: segs, headers: o?.headers, future };
    } catch (err) {
      future.reject(err);
    }
    this.settle(seq, p);
  }

  /** Records that push `seq` is prepared (or failed, p = null) and appends in the right order. */
  private settle(seq: number, p: Prepared | null): void {
    if (this.ordering === 'loose' && p !== null) this.append(p);
    if (seq === this.watermark) {
      if (this.ordering === 'strict' && p !== null) this.append(p);
      this.watermark++;
      while (this.early.size > 0 && this.early.has(this.watermark)) {
        const q = this.early.get(this.watermark) as Prepared | null;
        this.early.delete(this.watermark);
        if (this.ordering === 'strict' && q !== null) this.append(q);
        this.watermark++;
      }
      if (this.barriers.length > 0) this.releaseBarriers();
    } else {
      this.early.set(seq, this.ordering === 'strict' ? p : null);
    }
  }

  private releaseBarriers(): void {
    const ready = this.barriers.filter((b) => b.seq <= this.watermark);
    this.barriers = this.barriers.filter((b) => b.seq > this.watermark);
    for (const b of ready) b.resolve();
  }

  private append(p: Prepared): void {
    const st = this.parts[p.partition] as PartitionState;
    let b = st.open;
    if (b === undefined) {
      b = st.open = new Batch(Buffer.allocUnsafe(this.batchSize === 'adaptive' ? 16384 : Math.min(1 << 20, 256 * this.batchSize)));
      if (this.lingerMs >= 0 && this.batchSize !== 'adaptive') {
        st.linger = setTimeout(() => this.closeOpen(p.partition), this.lingerMs);
      }
    }
    b.add(p);
    if (this.batchSize === 'adaptive') {
      if (b.count >= ADAPTIVE_MAX_EVENTS || b.bytes >= ADAPTIVE_MAX_BYTES) this.closeOpen(p.partition);
      else if (!st.writing) this.scheduleKick();
    } else if (b.count >= this.batchSize) this.closeOpen(p.partition);
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
        if (st.open !== undefined && !st.writing && st.queued.length === 0) this.closeOpen(i);
      }
    });
  }

  private closeOpen(partition: number): void {
    const st = this.parts[partition] as PartitionState;
    if (st.linger !== undefined) {
      clearTimeout(st.linger);
      st.linger = undefined;
    }
    const b = st.open;
    if (b === undefined) return;
    st.open = undefined;
    st.queued.push(b);
    this.closedBatches++;
    this.pump(partition);
  }

  private pump(partition: number): void {
    const st = this.parts[partition] as PartitionState;
    if (st.writing || st.queued.length === 0) return;
    const batches: Batch[] = [];
    let bytes = 0;
    while (st.queued.length > 0 && (batches.length === 0 || bytes + (st.queued[0] as Batch).metaPos <= MERGE_MAX_BYTES)) {
      const b = st.queued.shift() as Batch;
      bytes += b.metaPos;
      batches.push(b);
    }
    st.writing = true;
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
    st.writing = false;
    let k = 0;
    for (const b of batches) {
      for (const f of b.futures) {
        if (ids === undefined) f.reject(err);
        else if ('first' in ids) f.resolve(ids.first + BigInt(k));
        else f.resolve(ids.ids[k] as EventID);
        k++;
      }
      for (const d of b.data) d.release();
      if (ids === undefined) b.done.reject(err);
      else b.done.resolve();
      this.writing.delete(b);
      this.closedBatches--;
    }
    if (this.capacityWaiters.length > 0 && this.hasCapacity()) {
      const ws = this.capacityWaiters;
      this.capacityWaiters = [];
      for (const w of ws) w();
    }
    if (st.queued.length > 0) this.pump(partition);
    else if (st.open !== undefined && this.batchSize === 'adaptive') this.closeOpen(partition);
  }

  hasCapacity(): boolean {
    return this.closedBatches < this.maxNumBatches;
  }

  ready(): Promise<void> {
    if (this.hasCapacity()) return Promise.resolve();
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
      for (const b of this.writing) pending.push(b.done.wait() as Promise<void>);
      const outcomes = await Promise.allSettled(pending);
      const failed = outcomes.find((o) => o.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      const touched = new Set(this.touched);
      this.touched.clear();
      if (touched.size > 0) await this.writer.sync(touched);
    })().then(
      () => result.resolve(),
      (err: unknown) => result.reject(err),
    );
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
    } finally {
      await this.writer.close();
    }
  }
}
