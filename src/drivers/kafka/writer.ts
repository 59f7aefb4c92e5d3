/**
 * Producing (kafka-octopus.md §7): the TopicWriter of a Kafka topic. Each appended batch goes to
 * its explicit partition as octopus-layout values (§5, key null, headers), and resolves with the
 * offsets the broker assigned. The producer client is idempotent with acks=all; up to
 * max.in.flight sends are in flight (the client writes them in order on each connection, with
 * consecutive sequences); what queues up while every slot is busy goes out together in the next
 * send, the chunks of each partition merged into one record batch. After a failed send the
 * client is replaced by a new one (fresh producer id and sequences).
 */
import { type EventBatch, type EventIds, type Headers, type TopicWriter } from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes } from '../../api/errors.js';
import { encodedHeaders, type EventID } from '../../api/event.js';
import { log } from '../../api/logging.js';
import type { KafkaClientFactory, KafkaProducerClient } from './client.js';
import { isUnknownTopic, kafkaError } from './client-errors.js';
import type { ConnectionSettings, ProducerSettings } from './options.js';
import { endOfStreamValue, OctopusRun } from './record-layout.js';
import { headersSize, listRun, type RecordHeaders, type RecordRun } from './record-batch.js';

/** Per-record overhead estimate in a record batch (varints, attributes, deltas). */
const RECORD_OVERHEAD = 24;
/** Upper bound of one produce request (all partitions together). */
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;

interface Item {
  partition: number;
  /** Each chunk's first offset and record count, in chunk order (ids are only built per event when the chunks' offsets are not contiguous). */
  bases: { base: bigint; count: number }[];
  chunks: number;
  done: number;
  failed: boolean;
  resolve: (ids: EventIds) => void;
  reject: (err: unknown) => void;
}

interface Chunk {
  item: Item;
  partition: number;
  /** The chunk's rank within its item. */
  index: number;
  records: RecordRun;
  bytes: number;
  /** performance.now() when queued (linger). */
  queuedAt: number;
}

/** The ids of an item's records from its chunks' first offsets: one range when they follow each other (the usual case). */
export function eventIds(bases: readonly { base: bigint; count: number }[]): EventIds {
  const first = (bases[0] as { base: bigint }).base;
  let next = first;
  for (const b of bases) {
    if (b.base !== next) {
      const ids: EventID[] = [];
      for (const c of bases) for (let i = 0; i < c.count; i++) ids.push(c.base + BigInt(i));
      return { ids };
    }
    next = b.base + BigInt(b.count);
  }
  return { first };
}

/**
 * The UTF-8 bytes of header keys, and of each key's last value: forwarded events all carry the same
 * keys, and the same policy and batch timestamp (only `diaspora-src` changes from event to event).
 * The buffers are shared, never written to. Bounded: cleared when it holds too many keys.
 */
const headerKeys = new Map<string, { key: Buffer; text: string; value: Buffer }>();

function encodeHeaders(h: Headers | undefined): RecordHeaders {
  if (h === undefined) return undefined;
  // a headers section its builder encoded (the forwarder's provenance headers)
  const section = encodedHeaders(h)?.kafka;
  if (section !== undefined) return section;
  let out: [Buffer, Buffer][] | undefined;
  for (const k in h) {
    const v = h[k] as string;
    let e = headerKeys.get(k);
    if (e === undefined) {
      if (headerKeys.size >= 256) headerKeys.clear();
      headerKeys.set(k, (e = { key: Buffer.from(k, 'utf8'), text: v, value: Buffer.from(v, 'utf8') }));
    } else if (e.text !== v) {
      e.text = v;
      e.value = Buffer.from(v, 'utf8');
    }
    (out ??= []).push([e.key, e.value]);
  }
  return out;
}

export class KafkaWriter implements TopicWriter {
  private client: KafkaProducerClient | undefined;
  private readonly queue: Chunk[] = [];
  /** Sends in flight (at most max.in.flight; the client keeps their order). */
  private inFlight = 0;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Set by sendNow(): nothing more is coming until the queue drains. */
  private urgent = false;
  private closed = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly factory: KafkaClientFactory,
    private readonly conn: ConnectionSettings,
    private readonly settings: ProducerSettings,
    private readonly topic: string,
    private readonly numPartitions: number,
  ) {}

  /** The producer hands over batches without waiting for earlier ones: they queue here and are sent in order, up to max.in.flight requests at once. */
  get maxConcurrentAppends(): number {
    return this.settings.maxInFlight;
  }

  append(partition: number, batch: EventBatch): Promise<EventIds> {
    if (this.closed) return Promise.reject(new DiasporaError('Producer is closed', { code: ErrorCodes.CLOSED }));
    // values are written by the record batch encoder straight from the batch's buffers
    const headers = batch.headers === undefined ? undefined : batch.headers.map(encodeHeaders);
    return this.enqueue(partition, new OctopusRun(batch, 0, batch.count, headers));
  }

  /** Writes the end-of-stream marker (§5) to each partition (default: all). */
  async markEndOfStream(partitions?: readonly number[]): Promise<void> {
    const parts = partitions ?? Array.from({ length: this.numPartitions }, (_, i) => i);
    await Promise.all(parts.map((p) => this.enqueue(p, listRun([{ value: endOfStreamValue() }]))));
  }

  private enqueue(partition: number, run: RecordRun): Promise<EventIds> {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.numPartitions) {
      return Promise.reject(new DiasporaError(`Invalid partition ${partition}`, { code: ErrorCodes.INVALID_ARGUMENT }));
    }
    return new Promise<EventIds>((resolve, reject) => {
      const item: Item = { partition, bases: [], chunks: 0, done: 0, failed: false, resolve, reject };
      if (run.count === 0) {
        resolve({ ids: [] });
        return;
      }
      // split into record batches within the per-batch limits (message.max.bytes, batch.num.messages)
      const cut = (from: number, to: number, bytes: number): void => {
        this.queue.push({ item, partition, index: item.chunks++, records: from === 0 && to === run.count ? run : run.slice(from, to), bytes, queuedAt: performance.now() });
      };
      let from = 0;
      let bytes = 0;
      for (let i = 0; i < run.count; i++) {
        const size = run.valueLength(i) + RECORD_OVERHEAD + headersSize(run.headers(i));
        if (i > from && (i - from >= this.settings.maxBatchRecords || bytes + size > this.settings.maxBatchBytes)) {
          cut(from, i, bytes);
          from = i;
          bytes = 0;
        }
        bytes += size;
      }
      cut(from, run.count, bytes);
      this.pump();
    });
  }

  private getClient(): KafkaProducerClient {
    this.client ??= this.factory.producer(this.conn, this.settings);
    return this.client;
  }

  /** Replaces the client after a failure (its producer id and sequence numbers are suspect). */
  private resetClient(): void {
    const old = this.client;
    this.client = undefined;
    if (old !== undefined) void old.close(true).catch(() => undefined);
  }

  /** The producer waits for what is queued: send it without lingering, until the queue is empty. */
  sendNow(): void {
    this.urgent = true;
    this.pump();
  }

  private pump(): void {
    if (this.queue.length === 0) {
      this.urgent = false;
      if (this.inFlight === 0) {
        const w = this.idle;
        this.idle = [];
        for (const f of w) f();
      }
      return;
    }
    while (this.queue.length > 0 && this.inFlight < this.settings.maxInFlight) {
      // an idle producer sends at once; behind a request in flight, records gather into a batch
      // worth a request (or until linger.ms): a broker's cost is per request as much as per record
      if (this.inFlight > 0 && !this.urgent && !this.worthSending()) {
        this.armLinger();
        return;
      }
      const taken = this.takeRequest();
      this.inFlight++;
      void this.send(taken).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** Whether the queue holds half a batch (records or bytes), or records older than linger.ms. */
  private worthSending(): boolean {
    let records = 0;
    let bytes = 0;
    for (const c of this.queue) {
      records += c.records.count;
      bytes += c.bytes;
    }
    const oldest = (this.queue[0] as Chunk).queuedAt;
    return records * 2 >= this.settings.maxBatchRecords || bytes * 2 >= this.settings.maxBatchBytes || performance.now() - oldest >= this.settings.lingerMs;
  }

  private armLinger(): void {
    if (this.lingerTimer !== undefined) return;
    const wait = Math.max(0, this.settings.lingerMs - (performance.now() - (this.queue[0] as Chunk).queuedAt));
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = undefined;
      this.pump();
    }, wait);
  }

  /**
   * The chunks of the next request: the queued chunks of each partition, in queue order, merged
   * into one record batch per partition within the batch limits (what queued up while every
   * request slot was busy goes out in one).
   */
  private takeRequest(): Chunk[] {
    const taken: Chunk[] = [];
    const perPartition = new Map<number, { records: number; bytes: number; full: boolean }>();
    let bytes = 0;
    for (let i = 0; i < this.queue.length; ) {
      const c = this.queue[i] as Chunk;
      let p = perPartition.get(c.partition);
      if (p === undefined) perPartition.set(c.partition, (p = { records: 0, bytes: 0, full: false }));
      const fits =
        !p.full &&
        (p.records === 0 || (p.records + c.records.count <= this.settings.maxBatchRecords && p.bytes + c.bytes <= this.settings.maxBatchBytes)) &&
        (taken.length === 0 || bytes + c.bytes <= MAX_REQUEST_BYTES);
      if (!fits) {
        p.full = true; // keep per-partition order: nothing later of this partition may overtake
        i++;
        continue;
      }
      p.records += c.records.count;
      p.bytes += c.bytes;
      taken.push(c);
      bytes += c.bytes;
      this.queue.splice(i, 1);
    }
    return taken;
  }

  private async send(chunks: Chunk[]): Promise<void> {
    const live = chunks.filter((c) => !c.item.failed);
    if (live.length === 0) return;
    let bases: Map<string, bigint>;
    try {
      bases = await this.withTimeout(this.getClient().send(live.map((c) => ({ topic: this.topic, partition: c.partition, records: c.records }))));
    } catch (err) {
      this.resetClient();
      // the client retried a produce refused for an unknown partition, then found the topic unknown: it was deleted
      // (a forward policy halts on this, forwarding.md §13 #17, instead of retrying for ever)
      const e = isUnknownTopic(err) ? new DiasporaError(`Topic ${this.topic} was deleted`, { code: ErrorCodes.TOPIC_NOT_FOUND, cause: err }) : kafkaError(err);
      log.debug(`Kafka produce to ${this.topic} failed: ${e.message}`);
      for (const c of live) this.fail(c.item, e);
      return;
    }
    // a chunk's records follow those of the earlier chunks of its partition in the batch
    const before = new Map<number, number>();
    for (const c of live) {
      const base = bases.get(`${this.topic}:${c.partition}`);
      const offset = before.get(c.partition) ?? 0;
      before.set(c.partition, offset + c.records.count);
      if (base === undefined || base < 0n) {
        this.fail(c.item, kafkaError(new Error(`no offset returned for partition ${c.partition}`)));
        continue;
      }
      this.complete(c, base + BigInt(offset));
    }
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    const ms = this.settings.deliveryTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Message timed out after ${ms} ms`)), ms);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  private complete(c: Chunk, base: bigint): void {
    const item = c.item;
    if (item.failed) return;
    item.bases[c.index] = { base, count: c.records.count };
    item.done++;
    if (item.done === item.chunks) item.resolve(eventIds(item.bases));
  }

  /**
   * Fails an append, and the appends of the same partition still queued behind it: sent by a new
   * client they would be stored ahead of the failed records, which the producer pushes again.
   */
  private fail(item: Item, err: unknown): void {
    if (item.failed) return;
    item.failed = true;
    for (let i = this.queue.length - 1; i >= 0; i--) if ((this.queue[i] as Chunk).item === item) this.queue.splice(i, 1);
    item.reject(err);
    for (const c of this.queue.filter((q) => q.partition === item.partition)) this.fail(c.item, err);
  }

  /** acks=all: an acknowledged record is as durable as Kafka makes it; nothing more to do. */
  async sync(): Promise<void> {}

  private drained(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.drained();
    const c = this.client;
    this.client = undefined;
    if (c !== undefined) await c.close().catch(() => c.close(true).catch(() => undefined));
  }
}
