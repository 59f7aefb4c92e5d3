/**
 * One forwarding policy (forwarding.md §3): source consumer → filters → partition mapping →
 * destination batches → confirmation → source acknowledgement.
 *
 * Order and safety: batches are written one after the other (the next batch is read while the
 * current one is written); an event is acknowledged on the source only once the destination
 * confirmed it (or a filter dropped it), so the committed source position is always a safe
 * restart point. A failed write is retried with backoff — the unconfirmed suffix of the batch,
 * in order — and never skipped.
 */
import { join } from 'node:path';
import { ConsumerImpl, isNoMoreEvents, type Consumer, type Event } from '../api/consumer.js';
import { DefaultSerializer, DefaultValidator } from '../api/components.js';
import type { DataAllocator, DataSelector } from '../api/data-selection.js';
import { NoDataSelector } from '../api/data-selection.js';
import type { DataSegments } from '../api/data-segments.js';
import type { EventID, Headers, StoredRun } from '../api/driver-spi.js';
import { DiasporaError, ErrorCodes, errorMessage } from '../api/errors.js';
import type { Future } from '../api/future.js';
import { dumpCompact, isJsonObject, type Json } from '../api/json.js';
import type { Metadata } from '../api/metadata.js';
import { ProducerImpl, type Producer, type PushOptions } from '../api/producer.js';
import type { TopicHandle } from '../api/topic.js';
import type { PartitionMapping, PolicyConfig } from './config.js';
import { ForwardedSet } from './dedup.js';
import { acquireLease, type Lease } from './lease.js';
import { ProvenanceHeaders } from './provenance.js';
import { cutBatches, outgoingRun, type StoredHeaders } from './stored-runs.js';
import { applyFilters, type Filter, type ForwardEvent } from './filters.js';
import type { PolicyMetrics } from './metrics.js';

export type PolicyState = 'starting' | 'running' | 'retrying' | 'halted' | 'stopping' | 'stopped';

export interface PolicyLogger {
  info(m: string): void;
  warn(m: string): void;
  error(m: string): void;
  debug(m: string): void;
}

/** An event to write; it is also the push's options (`partition`, `headers`): no object per push. */
interface Outgoing extends PushOptions {
  event: Event;
  metadata: Metadata;
  data: DataSegments;
  headers: Headers | undefined;
  partition: number | undefined;
  bytes: number;
}

interface Batch {
  /** Every event read, in source order (acknowledged once the batch is done). */
  read: Event[];
  /** Events to write, in source order. */
  out: Outgoing[];
  readAt: number;
}

const STOP = Symbol('stop');

/**
 * Destination failures that retrying cannot mend, so the policy halts (forwarding.md §13 #17) and acknowledges nothing
 * more: the destination topic no longer exists, or written events could not be made durable (a retried fsync may
 * report success for pages the kernel dropped; the events since the last acknowledgement are forwarded again when
 * the policy restarts).
 */
function haltsPolicy(err: unknown): boolean {
  return err instanceof DiasporaError && (err.code === ErrorCodes.TOPIC_NOT_FOUND || err.code === ErrorCodes.SYNC_FAILED);
}

/** Ensures the destination can take a mapping (checked at start, fatal). */
export function checkPartitionMapping(cfg: PolicyConfig, src: TopicHandle, dst: TopicHandle): PartitionMapping {
  const ns = src.partitions.length;
  const nd = dst.partitions.length;
  const m = cfg.partitions ?? (nd >= ns ? { kind: 'same' } : { kind: 'auto' });
  if (m.kind === 'same' && nd < ns) {
    throw new DiasporaError(`Policy ${cfg.name}: partitions 'same' needs at least ${ns} destination partitions (${cfg.to.ref} has ${nd})`, {
      code: ErrorCodes.CONFIG,
    });
  }
  if (m.kind === 'fixed' && m.partition >= nd) {
    throw new DiasporaError(`Policy ${cfg.name}: partitions 'fixed:${m.partition}' but ${cfg.to.ref} has ${nd} partition(s)`, { code: ErrorCodes.CONFIG });
  }
  return m;
}

/** FNV-1a over the canonical JSON of a metadata field (absent = empty): stable across processes and drivers. */
function hashPartition(md: Metadata, path: readonly string[], n: number): number {
  let v: Json | undefined = md.json;
  for (const k of path) v = isJsonObject(v) ? v[k] : undefined;
  const text = v === undefined ? '' : dumpCompact(v);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % n;
}

export class ForwardPolicy {
  state: PolicyState = 'starting';
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private readonly mapping: PartitionMapping;
  private stopping = false;
  /** Woken by requestStop() (removed once their wait ends, so nothing accumulates). */
  private readonly stopListeners = new Set<() => void>();
  private starts: Map<number, EventID> | undefined;
  private readonly provenance: ProvenanceHeaders;
  /** no_duplicates: source events the destination already holds (skipped and acknowledged once). */
  private forwardedBefore: ForwardedSet | undefined;
  private readonly leases: Lease[] = [];
  private ends: Map<number, EventID> | undefined;
  /** Last event read per partition (its id, a bigint, is only built when the end is checked). */
  private readonly delivered: (Event | undefined)[] = [];
  /** The same for stored runs: the last id read per partition. */
  private readonly deliveredStored: (number | undefined)[] = [];
  /** Events move as stored runs (see runStored), decided in open(). */
  private stored = false;
  /** The consumer's next positions when a read found nothing (they pass gaps in ids: kafka transaction markers). */
  private idleNext: Map<number, EventID> | undefined;
  /** Settles when the batch started last has pushed its events (the next one pushes after it). */
  private pushTail: Promise<void> = Promise.resolve();
  /** A write failed: first pushes stop until every batch in flight is done (see write()). */
  private recovering = false;
  /** A write failed beyond repair (haltsPolicy): the policy halts (general path: collect() stops reading). */
  private halting = false;
  /** Re-sends started so far (a batch behind a re-sent one skips its own back-off). */
  private resends = 0;
  private lastErrorLog = new Map<string, number>();
  private unconfirmed = 0;
  private receiveFailures = 0;
  private forwarded = 0;
  private runStarted = 0;
  private runEnded = 0;
  private lastCommit = performance.now();

  constructor(
    readonly cfg: PolicyConfig,
    private readonly src: TopicHandle,
    private readonly dst: TopicHandle,
    private readonly log: PolicyLogger,
    private readonly metrics: PolicyMetrics,
    private readonly plugins: { selector?: DataSelector; allocator?: DataAllocator; filters: Filter[] },
    /** The daemon's state_dir (no_duplicates: where the policy's lease is taken). */
    private readonly stateDir?: string,
  ) {
    this.mapping = checkPartitionMapping(cfg, src, dst);
    this.provenance = new ProvenanceHeaders(cfg.name, src.sourceId);
  }

  private get label(): string {
    return `${this.cfg.from.ref} -> ${this.cfg.to.ref}`;
  }

  private setState(s: PolicyState): void {
    this.state = s;
    this.metrics.setState(s);
  }

  /** Opens the source consumer and destination producer. */
  async open(): Promise<void> {
    if (this.cfg.delivery !== 'at_least_once') {
      if (this.stateDir !== undefined) this.leases.push(acquireLease(this.cfg.name, join(this.stateDir, `${encodeURIComponent(this.cfg.name)}.lock`)));
      // exactly_once into a files topic: also a lease in the destination topic, which daemons with other state
      // directories share
      const dstDir = this.dst.sourceId.startsWith('files:') ? this.dst.sourceId.slice('files:'.length) : undefined;
      if (this.cfg.delivery === 'exactly_once' && dstDir !== undefined) {
        this.leases.push(acquireLease(this.cfg.name, join(dstDir, `.forward-${encodeURIComponent(this.cfg.name)}.lock`)));
      }
    }
    const selector = this.cfg.forwardData ? this.plugins.selector : NoDataSelector;
    this.consumer = await this.src.consumer(this.cfg.consumerName, {
      startFrom: this.cfg.start,
      ackIntervalMs: this.cfg.checkpointIntervalMs,
      ...(selector !== undefined ? { dataSelector: selector } : {}),
      ...(this.plugins.allocator !== undefined ? { dataAllocator: this.plugins.allocator } : {}),
    });
    this.producer = await this.dst.producer({
      name: this.cfg.name,
      batchSize: 'adaptive',
      lingerMs: this.cfg.batchLingerMs,
      maxNumBatches: Math.max(this.cfg.maxInFlight, 2),
      haltOnFailure: true,
    });
    if (this.cfg.stopAtEnd) {
      this.ends = await this.consumer.endPositions();
      this.starts = await this.consumer.nextPositions();
    }
    this.stored = this.canForwardStored();
    if (this.cfg.delivery !== 'at_least_once') {
      const { set, report } = await ForwardedSet.scan(this.dst, this.src.sourceId, await this.consumer.nextPositions(), this.cfg.scanLimit);
      this.forwardedBefore = set;
      this.log.info(`No-duplicates resume of ${this.label}: ${report.scanned} destination event(s) scanned, ${report.found} source event(s) already forwarded will be skipped`);
      if (report.incomplete.length > 0) {
        this.log.warn(
          `No-duplicates resume of ${this.label}: scan_limit ${this.cfg.scanLimit} reached in destination partition(s) ${report.incomplete.join(', ')} before the resume positions: events forwarded before the scanned tail may be forwarded again`,
        );
      }
    }
  }

  /** Runs until stop() or, with stop_at_end, the end recorded at start. */
  async run(): Promise<void> {
    const consumer = this.consumer as Consumer;
    this.setState('running');
    this.runStarted = performance.now();
    this.log.info(`Forward worker started: ${this.label}`);
    // batches being written, oldest first: up to max_in_flight with at_least_once, one with the
    // duplicate-free deliveries (their skip sets assume one batch at a time)
    const window: Promise<void>[] = [];
    const depth = this.cfg.delivery === 'at_least_once' ? this.cfg.maxInFlight : 1;
    try {
      // events a no-duplicates resume must skip one by one go the general way
      if (this.stored && (this.forwardedBefore === undefined || this.forwardedBefore.size === 0)) {
        this.forwardedBefore = undefined;
        this.log.debug(`Forward worker ${this.label}: events are copied as stored (no decoding)`);
        await this.runStored(consumer as ConsumerImpl, this.producer as ProducerImpl);
        this.runEnded = performance.now();
        return;
      }
      for (;;) {
        if (this.cfg.stopAtEnd && this.reachedEnd()) break;
        if (this.cfg.headers) this.provenance.startBatch();
        // the next batch is read while earlier ones are written
        const batch = await this.collect(consumer);
        // a recovery ends when every batch written before it is done: only then may new events go
        while (window.length >= depth || (window.length > 0 && (this.recovering || batch === undefined))) await window.shift();
        this.recovering = false;
        if (batch === undefined) break;
        if (batch.read.length === 0) continue;
        this.countReceived(batch.read);
        const w = this.write(batch, window[window.length - 1]);
        // a halt surfaces when the window reaches it
        w.catch(() => undefined);
        window.push(w);
      }
      while (window.length > 0) await window.shift();
      this.runEnded = performance.now();
    } catch (err) {
      this.runEnded = performance.now();
      this.setState('halted');
      this.log.error(`Forward worker halted: ${this.label}: ${errorMessage(err)}`);
      return;
    }
  }

  /** Position-based stop-at-end: every partition's next id reached the end recorded at start. */
  private reachedEnd(): boolean {
    if (this.ends === undefined || this.starts === undefined) return false;
    for (const [p, end] of this.ends) {
      const last = this.delivered[p];
      const lastStored = this.deliveredStored[p];
      let next = lastStored !== undefined ? BigInt(lastStored + 1) : last === undefined ? (this.starts.get(p) ?? 0n) : last.id + 1n;
      const idle = this.idleNext?.get(p);
      if (idle !== undefined && idle > next) next = idle;
      if (next < end) return false;
    }
    return true;
  }

  /**
   * The fast path: events move as the source stores them, in runs of one partition, never decoded, and without an
   * object per event (beyond its provenance headers). It needs a source that hands out stored runs (files), the same
   * record format on both sides (default serializers), a destination that validates nothing (default validator), and
   * nothing that looks at single events: no filters, data selector or allocator, and a partition mapping that
   * depends on the source partition only (same, fixed).
   */
  private canForwardStored(): boolean {
    const c = this.consumer;
    return (
      c instanceof ConsumerImpl &&
      c.canPullStored &&
      this.producer instanceof ProducerImpl &&
      this.plugins.filters.length === 0 &&
      this.plugins.selector === undefined &&
      this.plugins.allocator === undefined &&
      (this.mapping.kind === 'same' || this.mapping.kind === 'fixed') &&
      this.src.serializer instanceof DefaultSerializer &&
      this.dst.serializer instanceof DefaultSerializer &&
      this.dst.validator instanceof DefaultValidator
    );
  }

  /**
   * Forwards stored runs (see canForwardStored): each read is appended, made durable (flush) and only then
   * acknowledged, like a batch of the general path; the next read runs while a batch is written. A failed append is
   * retried with back-off, in order: runs are written one after the other, so nothing is stored ahead of it.
   */
  private async runStored(consumer: ConsumerImpl, producer: ProducerImpl): Promise<void> {
    const stop = new AbortController();
    const onStop = (): void => stop.abort();
    this.stopListeners.add(onStop);
    let next: Promise<StoredRun[]> | undefined;
    try {
      for (;;) {
        if (this.stopping) break;
        // (the end is reached when read: a read ahead that reached it is still written)
        if (next === undefined && this.cfg.stopAtEnd && this.reachedEnd()) break;
        const runs = await (next ?? this.readStored(consumer, stop.signal));
        next = undefined;
        if (runs.length === 0 || this.stopping) continue; // read but not written: not acknowledged, read again after a restart
        const readAt = performance.now();
        if (!(this.cfg.stopAtEnd && this.reachedEnd())) {
          next = this.readStored(consumer, stop.signal);
          // awaited in the next turn; handled from now on, so that it failing during the write below (closed, topic
          // deleted) is that turn's error, not an unhandled rejection that ends the daemon
          next.catch(() => undefined);
        }
        await this.writeStored(consumer, producer, runs, readAt);
      }
    } finally {
      this.stopListeners.delete(onStop);
      // a read started before the stop: its events are not written, nor acknowledged
      next?.catch(() => undefined);
    }
  }

  /** The next stored runs ([] after a timeout, a stop or a read error, which is retried with back-off). */
  private async readStored(consumer: ConsumerImpl, stop: AbortSignal): Promise<StoredRun[]> {
    let runs: StoredRun[];
    try {
      // up to max_in_flight batches at once (as many as the general path has in flight), written as batches of
      // batch_size: a read's round trips through the thread pool cost more than its bytes
      const max = Math.max(1, Math.min(this.cfg.batchSize * this.cfg.maxInFlight, Math.floor(this.cfg.bufferEvents / 2)));
      runs = await consumer.pullStored(max, 1000, stop);
    } catch (err) {
      if (err instanceof DiasporaError && (err.code === ErrorCodes.TOPIC_NOT_FOUND || err.code === ErrorCodes.CLOSED)) throw err;
      this.metrics.error('receive');
      this.logError(`Error in forward worker ${this.label}: ${errorMessage(err)}`);
      this.setState('retrying');
      this.metrics.retry('receive');
      await this.backoff(this.receiveFailures++);
      return [];
    }
    if (this.receiveFailures > 0) {
      this.receiveFailures = 0;
      if (this.state === 'retrying') this.setState('running');
    }
    for (const r of runs) {
      this.deliveredStored[r.partitionIndex] = r.first + r.batch.count - 1;
      this.unconfirmed += r.batch.count;
      this.metrics.received(r.partitionIndex, r.batch.count);
    }
    return runs;
  }

  /**
   * Writes the runs of one read as batches of up to batch_size events over the partitions, each appended, flushed and
   * acknowledged before the next, like the general path's batches: a crash leaves at most one batch confirmed and not
   * acknowledged.
   */
  private async writeStored(consumer: ConsumerImpl, producer: ProducerImpl, runs: StoredRun[], readAt: number): Promise<void> {
    const headers: StoredHeaders = {
      provenance: this.cfg.headers ? this.provenance : undefined,
      ownOriginPrefix: this.cfg.dropOwnOrigin ? this.dst.sourceId + '#' : undefined,
    };
    for (const batch of cutBatches(runs, this.cfg.batchSize)) await this.writeStoredBatch(consumer, producer, batch, headers, readAt);
  }

  private async writeStoredBatch(consumer: ConsumerImpl, producer: ProducerImpl, runs: StoredRun[], headers: StoredHeaders, readAt: number): Promise<void> {
    const started = performance.now();
    if (this.cfg.headers) this.provenance.startBatch();
    let count = 0;
    let bytes = 0;
    const slow = setTimeout(() => this.log.warn(`Push timed out for ${this.label}`), 5000);
    try {
      await this.appendRuns(producer, runs, headers, (n, b) => {
        count += n;
        bytes += b;
      });
      await this.retrySend(() => producer.flush(), count);
    } finally {
      clearTimeout(slow);
    }
    this.metrics.bytesSent(bytes);
    for (const run of runs) {
      consumer.acknowledgeStored(run);
      this.unconfirmed -= run.batch.count;
    }
    this.forwarded += count;
    this.persistPositions();
    const now = performance.now();
    this.metrics.batch(count, (now - started) / 1000, (now - readAt) / 1000);
  }

  /** Appends the runs in order, each retried until it is stored; `written` counts events and bytes. */
  private async appendRuns(producer: ProducerImpl, runs: StoredRun[], headers: StoredHeaders, written: (events: number, bytes: number) => void): Promise<void> {
    for (const run of runs) {
      const out = outgoingRun(run, headers);
      for (let i = 0; i < out.dropped; i++) this.metrics.filtered('drop_own_origin');
      const batch = out.batch;
      if (batch === undefined) continue;
      const partition = this.mapping.kind === 'fixed' ? this.mapping.partition : run.partitionIndex;
      await this.retrySend(() => producer.appendStored(partition, batch), batch.count);
      this.metrics.sent(partition, batch.count);
      written(batch.count, out.bytes);
    }
  }

  /** Runs a destination step until it succeeds, with back-off; a stop ends the retries (the events stay unacknowledged). */
  private async retrySend(step: () => PromiseLike<unknown>, events: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await step();
        if (attempt > 0) this.setState('running');
        return;
      } catch (err) {
        this.metrics.error('send');
        if (haltsPolicy(err)) throw err;
        this.logError(`Error in forward worker ${this.label}: ${errorMessage(err)}`);
        if (this.stopping) throw new DiasporaError(`stopped with ${events} unconfirmed event(s)`, { code: ErrorCodes.CLOSED });
        this.setState('retrying');
        this.metrics.retry('send');
        this.producer?.resume();
        await this.backoff(attempt);
        if (this.stopping) throw new DiasporaError(`stopped with ${events} unconfirmed event(s)`, { code: ErrorCodes.CLOSED });
      }
    }
  }

  /** pullBatch woken early by a stop request (listener removed afterwards: nothing accumulates). */
  private pullOrStop(consumer: Consumer, max: number, timeoutMs: number): Promise<Event[] | typeof STOP> {
    if (this.stopping) return Promise.resolve(STOP);
    return new Promise((resolve, reject) => {
      const onStop = (): void => resolve(STOP);
      this.stopListeners.add(onStop);
      consumer.pullBatch(max, timeoutMs).then(
        (v) => {
          this.stopListeners.delete(onStop);
          resolve(v);
        },
        (err: unknown) => {
          this.stopListeners.delete(onStop);
          reject(err);
        },
      );
    });
  }

  /** Reads up to batch_size events, waiting at most batch_linger after the first. undefined = stop. */
  private async collect(consumer: Consumer): Promise<Batch | undefined> {
    const read: Event[] = [];
    const out: Outgoing[] = [];
    let deadline = Infinity;
    let readAt = 0;
    while (read.length < this.cfg.batchSize) {
      if (this.stopping || this.halting) return read.length > 0 ? { read, out, readAt } : undefined;
      const timeout = deadline === Infinity ? 1000 : Math.max(0, deadline - performance.now());
      if (timeout === 0 && read.length > 0) break;
      let got: Event[] | typeof STOP;
      try {
        got = await this.pullOrStop(consumer, this.cfg.batchSize - read.length, timeout);
        if (this.receiveFailures > 0) {
          this.receiveFailures = 0;
          if (this.state === 'retrying') this.setState('running');
        }
      } catch (err) {
        // a read error never advances the source: retry with backoff (a broker or disk may come
        // back); only a source that no longer exists or was closed ends the policy
        if (err instanceof DiasporaError && (err.code === ErrorCodes.TOPIC_NOT_FOUND || err.code === ErrorCodes.CLOSED)) throw err;
        this.metrics.error('receive');
        this.logError(`Error in forward worker ${this.label}: ${errorMessage(err)}`);
        if (read.length > 0) break; // write what was read; the next collect retries
        this.setState('retrying');
        this.metrics.retry('receive');
        await this.backoff(this.receiveFailures++);
        continue;
      }
      // events already taken stay in this batch; the consumer is closed next
      if (got === STOP) return read.length > 0 ? { read, out, readAt } : undefined;
      if (got.length === 0) {
        if (read.length > 0) break;
        // nothing came: the end may lie past ids that are never delivered (a transaction marker at a Kafka topic's end)
        if (this.ends !== undefined) this.idleNext = await consumer.nextPositions();
        if (this.reachedEnd()) return { read, out, readAt };
        continue;
      }
      if (read.length === 0) {
        deadline = performance.now() + this.cfg.batchLingerMs;
        readAt = performance.now();
      }
      for (const e of got) {
        if (isNoMoreEvents(e)) {
          this.stopping = true;
          break;
        }
        read.push(e);
        this.delivered[e.partitionIndex] = e;
        if (this.forwardedBefore !== undefined && this.forwardedBefore.take(e)) {
          // written before a crash, its position not persisted: acknowledged, not written again
          this.metrics.filtered('already_forwarded');
          if (this.forwardedBefore.size === 0) this.forwardedBefore = undefined;
          continue;
        }
        const o = this.plugins.filters.length > 0 ? await this.prepareFiltered(e) : this.prepare(e, e.metadata, e.data, undefined);
        if (o !== undefined) out.push(o);
      }
      if (this.stopping || (this.ends !== undefined && this.reachedEnd())) break;
    }
    return { read, out, readAt };
  }

  /** Runs the filters, then prepare() on what they let through (undefined = dropped). */
  private async prepareFiltered(e: Event): Promise<Outgoing | undefined> {
    if (this.isOwnOrigin(e)) return undefined;
    const fe: ForwardEvent = {
      metadata: e.metadata,
      data: e.data,
      headers: { ...e.headers },
      source: { id: this.src.sourceId, partition: e.partitionIndex, eventId: e.id },
    };
    const r = await this.runFilters(fe);
    if ('droppedBy' in r) {
      this.metrics.filtered(r.droppedBy);
      return undefined;
    }
    return this.prepare(e, r.metadata, r.data, r.headers);
  }

  private isOwnOrigin(e: Event): boolean {
    if (this.cfg.dropOwnOrigin && e.headers['diaspora-src']?.startsWith(this.dst.sourceId + '#')) {
      this.metrics.filtered('drop_own_origin');
      return true;
    }
    return false;
  }

  /** Provenance headers and partition mapping of one event (undefined = dropped). */
  private prepare(e: Event, metadata: Metadata, data: DataSegments, filtered: Record<string, string> | undefined): Outgoing | undefined {
    if (filtered === undefined && this.isOwnOrigin(e)) return undefined;
    const srcHeaders = filtered ?? e.headers;
    let headers: Record<string, string> | undefined;
    if (this.cfg.headers) {
      headers = this.provenance.build(srcHeaders, e.partitionIndex, String((e as { idNumber?: number }).idNumber ?? e.id));
    } else {
      for (const _ in srcHeaders) {
        headers = { ...srcHeaders };
        break;
      }
    }
    let partition: number | undefined;
    switch (this.mapping.kind) {
      case 'same':
        partition = e.partitionIndex;
        break;
      case 'fixed':
        partition = this.mapping.partition;
        break;
      case 'hash':
        partition = hashPartition(metadata, this.mapping.path, this.dst.partitions.length);
        break;
      case 'auto':
        partition = undefined;
    }
    return { event: e, metadata, data, headers, partition, bytes: data.size + (metadata.storedLength || metadata.dump().length) };
  }

  private async runFilters(fe: ForwardEvent): Promise<ForwardEvent | { droppedBy: string }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await applyFilters(this.plugins.filters, fe);
      } catch (err) {
        this.metrics.error('process');
        if (attempt >= 3) {
          if (this.cfg.filterErrors === 'drop') {
            this.logError(`Filter failed, event dropped: ${errorMessage(err)}`);
            return { droppedBy: 'error' };
          }
          throw new DiasporaError(`Filter failed after ${attempt + 1} attempts: ${errorMessage(err)}`, { code: ErrorCodes.GENERIC });
        }
        this.metrics.retry('process');
        await this.backoff(attempt);
      }
    }
  }

  /**
   * Writes a batch until every event is confirmed, then acknowledges it on the source after the
   * batch before it (`previous`), so acknowledgements stay in source order.
   *
   * Several batches are in flight (max_in_flight); they push one after the other, so events reach
   * the producer in source order. The producer halts a partition whose append failed (strict
   * ordering, haltOnFailure): what was pushed behind the failure is not written. On a failure the
   * policy recovers in order: new pushes stop (`recovering`), each batch re-sends its unconfirmed
   * events only once every batch before it is done, and new batches start when the window is
   * empty. So no event is stored ahead of an earlier one that is re-sent (first occurrences keep
   * the source order), and only events after a failed one may be duplicated (at_least_once).
   */
  private async write(batch: Batch, previous: Promise<void> | undefined): Promise<void> {
    const producer = this.producer as Producer;
    const started = performance.now();
    this.unconfirmed += batch.read.length;
    const pushedBefore = this.pushTail;
    let pushed!: () => void;
    this.pushTail = new Promise<void>((resolve) => (pushed = resolve));
    let pending = batch.out;
    try {
      for (let attempt = 0; pending.length > 0; attempt++) {
        let futures: Future<EventID>[];
        if (attempt === 0) {
          await pushedBefore;
          futures = await this.pushAll(producer, pending, true);
          pushed();
        } else {
          // every earlier batch is done: nothing of theirs can land behind what is re-sent now
          if (previous !== undefined) await previous;
          producer.resume();
          futures = await this.pushAll(producer, pending, false);
        }
        const confirmed = await this.confirm(producer, pending, futures);
        if (confirmed.unconfirmed.length === 0) break;
        pending = confirmed.unconfirmed;
        this.recovering = true;
        if (confirmed.err === undefined) continue; // held back by a recovery: re-sent in turn, no error
        this.metrics.error('send');
        if (haltsPolicy(confirmed.err)) {
          this.halting = true; // collect() returns, so that run() reaches this batch's failure without new events
          throw confirmed.err;
        }
        this.logError(`Error in forward worker ${this.label}: ${errorMessage(confirmed.err)}`);
        if (this.stopping) throw new DiasporaError(`stopped with ${pending.length} unconfirmed event(s)`, { code: ErrorCodes.CLOSED });
        this.setState('retrying');
        this.metrics.retry('send');
        // behind a batch that is itself recovering, its back-off and successful re-send stand for ours
        const resendsBefore = this.resends;
        if (previous !== undefined) await previous;
        if (this.resends === resendsBefore) await this.backoff(attempt);
        this.resends++;
        if (this.stopping) throw new DiasporaError(`stopped with ${pending.length} unconfirmed event(s)`, { code: ErrorCodes.CLOSED });
        this.setState('running');
      }
    } finally {
      pushed();
    }
    if (previous !== undefined) await previous;
    this.acknowledge(batch, started);
  }

  /**
   * Pushes events in order, waiting for producer capacity when needed. A first push stops when a
   * recovery starts (`holdBack`): the events not pushed are re-sent in turn.
   */
  private async pushAll(producer: Producer, pending: readonly Outgoing[], holdBack: boolean): Promise<Future<EventID>[]> {
    const futures: Future<EventID>[] = [];
    for (let i = 0; i < pending.length; i++) {
      if (holdBack && this.recovering) break;
      const o = pending[i] as Outgoing;
      if (!producer.hasCapacity()) {
        this.metrics.backpressure();
        await producer.ready();
        if (holdBack && this.recovering) break;
      }
      futures.push(producer.push(o.metadata, o.data, o));
    }
    return futures;
  }

  /**
   * Flushes, then sorts `pending` (whose first `futures.length` events were pushed) into confirmed
   * (counted) and unconfirmed events, in order, with the first failure. Only the unconfirmed are
   * re-sent: a failed append fails what follows it in its partition (strict ordering), never what
   * was written in other partitions, so re-sending those would only duplicate them.
   */
  private async confirm(producer: Producer, pending: readonly Outgoing[], futures: readonly Future<EventID>[]): Promise<{ unconfirmed: Outgoing[]; err: unknown }> {
    const slow = setTimeout(() => this.log.warn(`Push timed out for ${this.label}`), 5000);
    try {
      await producer.flush();
    } catch (err) {
      // the events were written but are not durable: none of them is confirmed (see haltsPolicy)
      if (err instanceof DiasporaError && err.code === ErrorCodes.SYNC_FAILED) return { unconfirmed: [...pending], err };
      // other failures are found below, event by event
    } finally {
      clearTimeout(slow);
    }
    // after flush every earlier push is settled: inspect them without a promise each
    const isConfirmed = (f: Future<EventID>): boolean => (f as Future<EventID> & { failure?: unknown }).failure === undefined && f.completed();
    if (futures.length === pending.length && futures.every(isConfirmed)) {
      this.countSent(pending);
      return { unconfirmed: [], err: undefined };
    }
    const confirmed: Outgoing[] = [];
    const unconfirmed: Outgoing[] = [];
    let err: unknown;
    for (let i = 0; i < pending.length; i++) {
      const o = pending[i] as Outgoing;
      const f = futures[i];
      if (f === undefined) unconfirmed.push(o); // held back (not pushed)
      else if (isConfirmed(f)) confirmed.push(o);
      else {
        err ??= (f as Future<EventID> & { failure?: { error: unknown } }).failure?.error ?? new DiasporaError('push did not complete after flush', { code: ErrorCodes.GENERIC });
        unconfirmed.push(o);
      }
    }
    this.countSent(confirmed);
    return { unconfirmed, err };
  }

  /** Everything confirmed (or filtered): acknowledges the batch on the source, in source order. */
  private acknowledge(batch: Batch, started: number): void {
    (this.consumer as Consumer).acknowledgeMany(batch.read);
    this.unconfirmed -= batch.read.length;
    this.forwarded += batch.out.length;
    this.persistPositions();
    const now = performance.now();
    this.metrics.batch(batch.out.length, (now - started) / 1000, (now - batch.readAt) / 1000);
  }

  /** Persists positions on our own schedule: a busy pipeline delays the consumer's timers. */
  private persistPositions(): void {
    const t = performance.now();
    if (t - this.lastCommit >= this.cfg.checkpointIntervalMs) {
      this.lastCommit = t;
      void (this.consumer as Consumer).commit().catch((err: unknown) => {
        this.metrics.error('commit');
        this.logError(`Could not persist source positions of ${this.label}: ${errorMessage(err)}`);
      });
    }
  }

  private countReceived(events: readonly Event[]): void {
    const perPartition = new Map<number, number>();
    for (const e of events) perPartition.set(e.partitionIndex, (perPartition.get(e.partitionIndex) ?? 0) + 1);
    for (const [p, k] of perPartition) this.metrics.received(p, k);
  }

  /** Metrics per batch, not per event: one counter update per partition touched. */
  private countSent(events: readonly Outgoing[]): void {
    const perPartition = new Map<number, number>();
    let bytes = 0;
    for (const o of events) {
      const p = o.partition ?? -1;
      perPartition.set(p, (perPartition.get(p) ?? 0) + 1);
      bytes += o.bytes;
    }
    for (const [p, k] of perPartition) this.metrics.sent(p < 0 ? 'auto' : p, k);
    this.metrics.bytesSent(bytes);
  }

  private backoff(attempt: number): Promise<void> {
    const { minMs, maxMs, jitter } = this.cfg.retry;
    const base = Math.min(maxMs, minMs * 2 ** attempt);
    const ms = base * (1 + jitter * (Math.random() * 2 - 1));
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.stopListeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopListeners.add(done);
    });
  }

  /** Repeated identical errors are logged at most once per 10 s, with a repeat count. */
  private logError(msg: string): void {
    const now = performance.now();
    const last = this.lastErrorLog.get(msg);
    if (last === undefined || now - last >= 10_000) {
      this.lastErrorLog.set(msg, now);
      this.log.error(msg);
    }
  }

  /** Stops reading; the current batch is finished (or abandoned at the deadline by the daemon). */
  requestStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.setState('stopping');
    for (const l of [...this.stopListeners]) l();
  }

  /** Events read but not confirmed (forwarded again after a restart). */
  get unconfirmedCount(): number {
    return this.unconfirmed;
  }

  /** Flushes, persists positions and closes the clients. */
  async close(): Promise<void> {
    this.log.info(`Flushing producer for ${this.cfg.to.ref}...`);
    await this.producer?.close().catch((err: unknown) => this.log.error(`Flush failed for ${this.cfg.to.ref}: ${errorMessage(err)}`));
    await this.consumer?.close().catch((err: unknown) => this.log.error(`Closing the source of ${this.label} failed: ${errorMessage(err)}`));
    for (const f of this.plugins.filters) {
      try {
        await f.close?.();
      } catch (err) {
        this.log.warn(`Filter '${f.id}' of ${this.label} failed to close: ${errorMessage(err)}`);
      }
    }
    for (const l of this.leases.splice(0)) l.release();
    if (this.state !== 'halted') this.setState('stopped');
    const seconds = ((this.runEnded || performance.now()) - this.runStarted) / 1000;
    this.log.info(`Forwarded ${this.forwarded} event(s) for ${this.label} in ${seconds.toFixed(3)} s (${seconds > 0 ? Math.round(this.forwarded / seconds) : 0} events/s)`);
    this.log.info(`Forward worker stopped: ${this.label}`);
  }
}
