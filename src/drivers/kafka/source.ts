/**
 * Consuming a Kafka topic (kafka-octopus.md §6): the ConsumerSource of the `kafka` driver.
 *
 * Our own fetch loop (docs/notes/platformatic-kafka.md §4.9) serves every mode: one sessionless
 * long-poll Fetch in flight per partition leader, on connections of its own, prefetching while a
 * partition's buffer is below a bound. Records are decoded only when handed to the consumer, so a
 * decode or allocation error leaves them in place (the next fetch retries). Read_committed uses
 * our own aborted-transaction filter (batches.ts).
 *
 * Assignment and commits, by consumer:
 *  - anonymous `""`: manual assignment of the requested partitions, nothing committed;
 *  - with `targets`: manual assignment of exactly those partitions, standalone commits under the
 *    consumer name (generation −1; do not mix with group members of that name);
 *  - otherwise: a classic consumer-group member named after the consumer (rebalancing; member
 *    commits restricted to the partitions currently owned).
 */
import { deserializeRecordAt, type SerializerImpl } from '../../api/components.js';
import { NO_MORE_EVENTS } from '../../api/consumer.js';
import { selectFromBuffer } from '../../api/data-selection.js';
import { DataSegments } from '../../api/data-segments.js';
import type { ConsumerSource, EventID, SourceEvent, SourceOptions, StartFrom } from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes } from '../../api/errors.js';
import { EventRecord, type Headers } from '../../api/event.js';
import { log } from '../../api/logging.js';
import { Metadata } from '../../api/metadata.js';
import { Notifier, Wakeup } from '../common/notifier.js';
import { interleave } from '../common/round-robin.js';
import { consumableRecords, type ConsumedRecord } from './batches.js';
import type { FetchedPartition, KafkaAdminClient, KafkaFetchClient, KafkaGroupClient } from './client.js';
import { isUnknownTopic, KafkaClientError, kafkaError } from './client-errors.js';
import type { ConsumerSettings } from './options.js';
import { decodeValue, MalformedRecord } from './record-layout.js';

/** Offsets up to this are delivered as number ids (no bigint per event). */
const MAX_SAFE_OFFSET = BigInt(Number.MAX_SAFE_INTEGER);

/** Fetch errors after which the partition's leader is looked up again and the fetch retried. */
const RETRIABLE_PARTITION_ERRORS = new Set([
  'NOT_LEADER_OR_FOLLOWER',
  'LEADER_NOT_AVAILABLE',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'UNKNOWN_TOPIC_ID',
  'OFFSET_NOT_AVAILABLE',
  'REPLICA_NOT_AVAILABLE',
  'KAFKA_STORAGE_ERROR',
  'NOT_ENOUGH_REPLICAS',
  'REQUEST_TIMED_OUT',
  'NETWORK_EXCEPTION',
  'CORRUPT_MESSAGE',
]);

/** Consecutive failures of a leader's fetches before a pull is rejected (retries go on). */
const FAILURES_BEFORE_REPORT = 3;

export type SourceMode = 'anonymous' | 'manual' | 'group';

export interface KafkaSourceDeps {
  topic: string;
  fetcher: KafkaFetchClient;
  admin: KafkaAdminClient;
  /** For group mode. */
  group: KafkaGroupClient | undefined;
  settings: ConsumerSettings;
  onMalformed: 'skip' | 'stop';
  /** How often to look for partitions added to the topic (metadata.max.age.ms); 0: never. */
  partitionCheckMs: number;
  /** The topic's partition count when it was opened. */
  topicPartitions: number;
}

class PartitionState {
  owned = false;
  assignedBefore = false;
  /** Next offset to fetch; undefined while the start position is being resolved. */
  position: bigint | undefined;
  start: bigint | undefined;
  buffer: ConsumedRecord[] = [];
  head = 0;
  /** Offset after the last record handed out by fetch(). */
  delivered: bigint | undefined;
  inflight = false;
  /** Incremented on every (re)assignment and reset: stale async results are dropped. */
  epoch = 0;
  /** Records never to be delivered again (skipped malformed values, end markers): offset → next. */
  readonly skips = new Map<bigint, bigint>();
  /** Malformed offsets that already rejected a pull (skip mode). */
  readonly rejected = new Set<bigint>();
  constructor(readonly index: number) {}

  /** Value bytes of the records fetched and not yet taken. */
  bufferedBytes = 0;

  get buffered(): number {
    return this.buffer.length - this.head;
  }

  clear(): void {
    this.buffer = [];
    this.head = 0;
    this.bufferedBytes = 0;
  }
}

function decodeHeaders(h: readonly [Buffer | null, Buffer | null][]): Headers | undefined {
  if (h.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of h) out[k === null ? '' : k.toString('utf8')] = v === null ? '' : v.toString('utf8');
  return out;
}

export class KafkaSource implements ConsumerSource {
  private readonly states = new Map<number, PartitionState>();
  private readonly notifier = new Notifier();
  private leaders = new Map<number, number>();
  private leadersStale = true;
  private leaderLookup: Promise<void> | undefined;
  private lookupFailures = 0;
  private readonly inflightLeaders = new Set<number>();
  private readonly failures = new Map<number, number>();
  private readonly backoffUntil = new Map<number, number>();
  private retryTimer: NodeJS.Timeout | undefined;
  private pendingError: DiasporaError | undefined;
  /**
   * The topic's id at the first metadata answer (right after start): an answer with another id means the topic was
   * deleted and created again under the same name, whose offsets mean other records.
   */
  private topicId: string | undefined;
  /** Metadata answers in a row that the cluster does not know the topic. */
  private unknownAnswers = 0;
  /** The topic was deleted: every fetch rejects with this, and nothing is fetched any more. */
  private gone: DiasporaError | undefined;
  private rr = 0;
  private closed = false;
  private readonly resolving = new Set<Promise<void>>();
  private readonly prefetchLimit: number;

  constructor(
    private readonly o: SourceOptions,
    private readonly d: KafkaSourceDeps,
    readonly mode: SourceMode,
  ) {
    for (const p of o.partitions) this.states.set(p, new PartitionState(p));
    this.initialCount = this.knownCount = d.topicPartitions;
    this.prefetchLimit = Math.max(d.settings.prefetchRecords, o.batchHint * 2);
  }

  private revokeHandler: ((partitions: ReadonlySet<number>) => Map<number, EventID>) | undefined;
  /** Partitions of the topic when this consumer started: those created later start at their beginning. */
  private readonly initialCount: number;
  /** Partitions known now (grows when the topic does). */
  private knownCount: number;
  private growthTimer: NodeJS.Timeout | undefined;

  onRevoke(handler: (partitions: ReadonlySet<number>) => Map<number, EventID>): void {
    this.revokeHandler = handler;
  }

  /** Assigns the initial partitions (manual modes) or joins the group; resolves once positions are known. */
  async start(): Promise<void> {
    if (this.mode === 'group') {
      await (this.d.group as KafkaGroupClient).join(this.d.topic, (parts) => this.assign(parts));
    } else this.assign(this.o.partitions);
    while (this.resolving.size > 0) await Promise.all([...this.resolving]);
    if (this.pendingError !== undefined) {
      const e = this.pendingError;
      this.pendingError = undefined;
      throw e;
    }
    this.startFetches();
    // the whole topic (no targets): partitions added later are picked up
    if (this.o.targets.length === 0 && this.mode !== 'manual' && this.d.partitionCheckMs > 0) this.scheduleGrowthCheck();
  }

  // -------------------------------------------------------------------------------------------
  // Partitions added to the topic

  private scheduleGrowthCheck(): void {
    this.growthTimer = setTimeout(() => {
      this.growthTimer = undefined;
      void this.checkGrowth().finally(() => {
        if (!this.closed) this.scheduleGrowthCheck();
      });
    }, this.d.partitionCheckMs);
    this.growthTimer.unref();
  }

  /**
   * Compares the topic's partition count with the known one: an anonymous consumer takes the new
   * partitions itself; a group member rejoins, so that the group's leader assigns them (the
   * coordinator rebalances when the leader rejoins).
   */
  private async checkGrowth(): Promise<void> {
    let count: number;
    try {
      count = await this.d.fetcher.partitionCount(this.d.topic, true);
    } catch {
      return; // transient: the next check retries
    }
    if (this.closed || count <= this.knownCount) return;
    log.info(`Kafka consumer of ${this.d.topic}: the topic grew from ${this.knownCount} to ${count} partitions`);
    this.knownCount = count;
    if (this.mode === 'group') {
      await (this.d.group as KafkaGroupClient).rejoin().catch((err: unknown) => log.warn(`Kafka consumer of ${this.d.topic}: rejoin failed: ${kafkaError(err).message}`));
      return;
    }
    const owned = [...this.states.values()].filter((st) => st.owned).map((st) => st.index);
    this.assign([...owned, ...Array.from({ length: count }, (_, i) => i).filter((i) => !owned.includes(i))]);
  }

  // -------------------------------------------------------------------------------------------
  // Assignment and start positions

  private assign(partitions: readonly number[]): void {
    if (this.closed) return;
    const next = new Set(partitions);
    const revoked = new Set<number>();
    for (const st of this.states.values()) {
      if (st.owned && !next.has(st.index)) {
        // revoked: the new owner re-reads whatever was not committed
        st.owned = false;
        st.position = undefined;
        st.epoch++;
        st.clear();
        revoked.add(st.index);
      }
    }
    if (revoked.size > 0 && this.revokeHandler !== undefined) {
      // events the consumer fetched but did not deliver are the new owner's: they were not
      // delivered here, so a partition that comes back resumes at the first of them
      for (const [p, id] of this.revokeHandler(revoked)) {
        const st = this.states.get(p);
        if (st !== undefined && st.delivered !== undefined && id < st.delivered) st.delivered = id;
      }
    }
    const added: PartitionState[] = [];
    for (const p of partitions) {
      let st = this.states.get(p);
      if (st === undefined) this.states.set(p, (st = new PartitionState(p)));
      if (st.owned) continue;
      st.owned = true;
      st.position = undefined;
      st.epoch++;
      st.clear();
      added.push(st);
    }
    // startFrom applies to a partition's first assignment; a partition that comes back after a
    // rebalance resumes from its committed position
    // — and a partition created after this consumer started is read from its committed position
    // or else its beginning: whatever was written to it before we noticed it must not be skipped
    const grown = added.filter((st) => !st.assignedBefore && st.index >= this.initialCount);
    const fresh = added.filter((st) => !st.assignedBefore && st.index < this.initialCount);
    const explicit = fresh.filter((st) => this.o.startAt?.has(st.index) === true);
    const first = fresh.filter((st) => this.o.startAt?.has(st.index) !== true);
    const again = added.filter((st) => st.assignedBefore);
    for (const st of added) st.assignedBefore = true;
    for (const [group, startFrom, reset, isExplicit] of [
      [first, this.o.startFrom, undefined, false],
      [explicit, 'earliest', undefined, true],
      [again, 'committed', undefined, false],
      [grown, 'committed', 'earliest', false],
    ] as const) {
      if (group.length === 0) continue;
      const job = this.resolveStarts(group, startFrom, reset, isExplicit).finally(() => this.resolving.delete(job));
      this.resolving.add(job);
    }
    this.notifier.notify();
  }

  private async resolveStarts(parts: PartitionState[], startFrom: StartFrom, resetTo?: 'earliest', explicit = false): Promise<void> {
    const epochs = parts.map((s) => s.epoch);
    const idx = parts.map((s) => s.index);
    try {
      let pos: Map<number, bigint>;
      if (startFrom === 'latest') pos = await this.d.fetcher.listOffsets(this.d.topic, idx, 'latest', this.d.settings.isolation);
      else {
        let committed = new Map<number, bigint>();
        if (startFrom === 'committed' && this.mode !== 'anonymous') {
          committed =
            this.mode === 'group'
              ? await (this.d.group as KafkaGroupClient).committed(this.d.topic, idx)
              : await this.d.admin.committedOffsets(this.o.consumerName, this.d.topic, idx);
        }
        const missing = idx.filter((p) => (committed.get(p) ?? -1n) < 0n);
        pos = new Map([...committed].filter(([, v]) => v >= 0n));
        if (missing.length > 0) {
          const reset = startFrom === 'earliest' ? 'earliest' : (resetTo ?? this.d.settings.autoOffsetReset);
          if (reset === 'error') throw new KafkaClientError(`No committed offset for partitions ${missing.join(', ')} and auto.offset.reset is "error"`, 'user');
          const r = await this.d.fetcher.listOffsets(this.d.topic, missing, reset, this.d.settings.isolation);
          for (const [p, v] of r) pos.set(p, v);
        }
      }
      parts.forEach((st, i) => {
        if (st.epoch !== epochs[i] || !st.owned) return;
        let p = pos.get(st.index) ?? 0n;
        // an explicit start (first assignment only; resolved from 'earliest'): not before the log start
        const at = explicit ? this.o.startAt?.get(st.index) : undefined;
        if (at !== undefined && at > p) p = at;
        // a partition re-assigned to this consumer never goes back before what it delivered
        if (st.delivered !== undefined && st.delivered > p && startFrom === 'committed') p = st.delivered;
        st.position = p;
        st.start = p;
      });
    } catch (err) {
      this.pendingError = kafkaError(err);
      // retry later: the partitions stay without a position until then
      setTimeout(() => {
        if (this.closed) return;
        const again = parts.filter((st, i) => st.epoch === epochs[i] && st.owned && st.position === undefined);
        if (again.length > 0) {
          const job = this.resolveStarts(again, startFrom, resetTo, explicit).finally(() => this.resolving.delete(job));
          this.resolving.add(job);
        }
      }, 1000).unref();
    }
    this.notifier.notify();
    this.startFetches();
  }

  // -------------------------------------------------------------------------------------------
  // Fetch loop

  private async lookupLeaders(): Promise<void> {
    try {
      const t = await this.d.fetcher.leaders(this.d.topic, true);
      this.unknownAnswers = 0;
      this.topicId ??= t.id;
      if (t.id !== this.topicId) {
        this.topicGone(`Topic ${this.d.topic} was deleted (a topic of the same name was created since)`);
        return;
      }
      this.leaders = t.leaders;
      this.leadersStale = false;
      this.lookupFailures = 0;
    } catch (err) {
      // an unknown topic counts once it is confirmed a second later (not a broker that has not caught up with it)
      if (isUnknownTopic(err)) {
        if (++this.unknownAnswers >= 2) this.topicGone(`Topic ${this.d.topic} was deleted`);
        else this.scheduleRetry(1000);
        return;
      }
      // retried every second; reported (log and one rejected pull) on the first failure and every 10th
      const n = ++this.lookupFailures;
      const e = kafkaError(err);
      if (n % 10 === 1) {
        log.warn(`Kafka consumer of ${this.d.topic}: metadata request failed (attempt ${n}): ${e.message}`);
        this.pendingError = e;
        this.notifier.notify();
      }
      this.scheduleRetry(1000);
    }
  }

  /** The topic no longer exists: fetching stops for good, and pulls reject once the records fetched before are taken. */
  private topicGone(message: string): void {
    log.warn(`Kafka consumer of ${this.d.topic}: ${message}`);
    this.gone = new DiasporaError(message, { code: ErrorCodes.TOPIC_NOT_FOUND });
    this.pendingError = undefined;
    this.notifier.notify();
  }

  private hasBuffered(): boolean {
    for (const st of this.states.values()) if (st.owned && st.head < st.buffer.length) return true;
    return false;
  }

  private scheduleRetry(ms: number): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.startFetches();
    }, ms);
  }

  /** Starts a long-poll fetch for every leader that has fetchable partitions and none in flight. */
  private startFetches(): void {
    if (this.closed || this.gone !== undefined) return;
    if (this.leadersStale) {
      if (this.leaderLookup === undefined) {
        this.leaderLookup = this.lookupLeaders().finally(() => {
          this.leaderLookup = undefined;
          if (!this.leadersStale) this.startFetches();
        });
      }
      return;
    }
    const now = Date.now();
    const byLeader = new Map<number, PartitionState[]>();
    for (const st of this.states.values()) {
      if (!st.owned || st.position === undefined || st.inflight || st.buffered >= this.prefetchLimit || st.bufferedBytes >= this.d.settings.prefetchBytes) continue;
      const leader = this.leaders.get(st.index);
      if (leader === undefined || leader < 0) {
        this.leadersStale = true;
        continue;
      }
      if (this.inflightLeaders.has(leader)) continue;
      const until = this.backoffUntil.get(leader) ?? 0;
      if (until > now) {
        this.scheduleRetry(until - now);
        continue;
      }
      let l = byLeader.get(leader);
      if (l === undefined) byLeader.set(leader, (l = []));
      l.push(st);
    }
    for (const [leader, parts] of byLeader) this.fetchFrom(leader, parts);
    if (this.leadersStale) this.scheduleRetry(200);
  }

  private fetchFrom(leader: number, parts: PartitionState[]): void {
    this.inflightLeaders.add(leader);
    const req = parts.map((st) => ({ st, partition: st.index, offset: st.position as bigint, epoch: st.epoch }));
    for (const r of req) r.st.inflight = true;
    const s = this.d.settings;
    this.d.fetcher
      .fetch(
        leader,
        this.d.topic,
        req.map((r) => ({ partition: r.partition, offset: r.offset })),
        { maxWaitMs: s.fetchWaitMaxMs, minBytes: s.fetchMinBytes, maxBytes: s.fetchMaxBytes, partitionMaxBytes: s.partitionMaxBytes, isolation: s.isolation, topicId: this.topicId },
      )
      .then(
        (result) => {
          this.failures.delete(leader);
          const byPartition = new Map<number, FetchedPartition>();
          for (const fp of result) byPartition.set(fp.partition, fp);
          let retry = false;
          for (const r of req) {
            r.st.inflight = false;
            const fp = byPartition.get(r.partition);
            if (fp === undefined || this.closed) continue;
            // reassigned or reset since the request: drop
            if (!r.st.owned || r.st.epoch !== r.epoch || r.st.position !== r.offset) continue;
            if (this.handlePartition(r.st, fp, r.offset)) retry = true;
          }
          // partition errors (leader moves, topic being deleted, …): no hot loop
          if (retry) this.backoffUntil.set(leader, Date.now() + 200);
        },
        (err: unknown) => {
          for (const r of req) r.st.inflight = false;
          if (this.closed) return;
          const n = (this.failures.get(leader) ?? 0) + 1;
          this.failures.set(leader, n);
          const e = kafkaError(err);
          const retriable = !(err instanceof KafkaClientError) || err.retriable || err.kind === 'network' || err.kind === 'timeout';
          if (n === 1 || n % FAILURES_BEFORE_REPORT === 0) log.warn(`Kafka consumer of ${this.d.topic}: fetch from broker ${leader} failed (attempt ${n}): ${e.message}`);
          if (!retriable || n % FAILURES_BEFORE_REPORT === 0) this.pendingError = e;
          this.leadersStale = true;
          this.backoffUntil.set(leader, Date.now() + Math.min(5000, 100 * 2 ** Math.min(n, 6)));
        },
      )
      .finally(() => {
        this.inflightLeaders.delete(leader);
        this.notifier.notify();
        this.startFetches();
      });
  }

  /** Applies one partition of a fetch response; true when the fetch should be retried after a pause. */
  private handlePartition(st: PartitionState, fp: FetchedPartition, offset: bigint): boolean {
    if (fp.error !== undefined) {
      if (fp.error === 'OFFSET_OUT_OF_RANGE') {
        const reset = this.d.settings.autoOffsetReset;
        if (reset === 'error') {
          this.pendingError = kafkaError(new Error(`offset ${offset} out of range in partition ${st.index} of ${this.d.topic}`));
          return true;
        }
        log.warn(`Kafka consumer of ${this.d.topic}: offset ${offset} out of range in partition ${st.index}, resetting to ${reset}`);
        st.position = undefined;
        st.epoch++;
        const job = this.resetPosition(st, reset).finally(() => this.resolving.delete(job));
        this.resolving.add(job);
        return false;
      }
      if (RETRIABLE_PARTITION_ERRORS.has(fp.error)) {
        this.leadersStale = true;
        log.debug(`Kafka consumer of ${this.d.topic}: partition ${st.index}: ${fp.error}, retrying`);
        return true;
      }
      this.pendingError = kafkaError(new Error(`${fp.error} in partition ${st.index} of ${this.d.topic}`));
      return true;
    }
    const { records, next } = consumableRecords(fp, offset, this.d.settings.isolation);
    if (records.length > 0) {
      if (st.head > 0 && st.head === st.buffer.length) st.clear();
      for (const r of records) {
        st.buffer.push(r);
        st.bufferedBytes += r.value === null ? 0 : r.value.length;
      }
    }
    if (next !== undefined && next > offset) st.position = next;
    return false;
  }

  private async resetPosition(st: PartitionState, which: 'earliest' | 'latest'): Promise<void> {
    const epoch = st.epoch;
    try {
      const r = await this.d.fetcher.listOffsets(this.d.topic, [st.index], which, this.d.settings.isolation);
      if (st.epoch === epoch && st.owned) st.position = r.get(st.index) ?? 0n;
    } catch (err) {
      this.pendingError = kafkaError(err);
      setTimeout(() => {
        if (!this.closed && st.epoch === epoch && st.owned && st.position === undefined) {
          const job = this.resetPosition(st, which).finally(() => this.resolving.delete(job));
          this.resolving.add(job);
        }
      }, 1000).unref();
    }
    this.startFetches();
  }

  // -------------------------------------------------------------------------------------------
  // Delivery

  async fetch(max: number, signal: AbortSignal, wait: boolean): Promise<SourceEvent[]> {
    for (;;) {
      if (this.closed) return [];
      // what was fetched before the deletion was noticed is delivered first
      if (this.gone !== undefined && !this.hasBuffered()) throw this.gone;
      if (this.pendingError !== undefined) {
        const e = this.pendingError;
        this.pendingError = undefined;
        throw e;
      }
      const out = this.take(max);
      this.startFetches();
      if (out.length > 0 || !wait || signal.aborted) return out;
      // nothing can be processed between take() and this subscription (no await in between)
      await new Wakeup([this.notifier]).wait(signal, 60_000);
    }
  }

  /**
   * Takes up to `max` events fairly across partitions. A record that cannot be delivered (decode
   * or allocation error) stops the take: the events before it are returned, and a take that
   * starts at it rejects (one pull) without consuming anything.
   */
  private take(max: number): SourceEvent[] {
    const parts = [...this.states.values()].filter((st) => st.owned && st.buffered > 0);
    if (parts.length === 0) return [];
    const lists: SourceEvent[][] = parts.map(() => []);
    const quota = Math.max(1, Math.ceil(max / parts.length));
    let total = 0;
    let failure: { err: unknown; st: PartitionState; offset: bigint } | undefined;
    outer: for (const share of [quota, max]) {
      for (let k = 0; k < parts.length && total < max; k++) {
        const st = parts[k] as PartitionState;
        const list = lists[k] as SourceEvent[];
        while (list.length < share && total < max && st.head < st.buffer.length) {
          const rec = st.buffer[st.head] as ConsumedRecord;
          let e: SourceEvent | undefined;
          try {
            e = this.decode(st, rec);
          } catch (err) {
            failure = { err, st, offset: rec.offset };
            break outer;
          }
          st.head++;
          st.bufferedBytes -= rec.value === null ? 0 : rec.value.length;
          st.delivered = rec.offset + 1n;
          if (e !== undefined) {
            list.push(e);
            total++;
          }
        }
      }
    }
    if (failure !== undefined && total === 0) {
      if (failure.err instanceof MalformedRecord) failure.st.rejected.add(failure.offset);
      throw failure.err;
    }
    for (const st of parts) if (st.head === st.buffer.length) st.clear();
    if (total === 0) return [];
    const { events, next } = interleave(lists, this.rr % parts.length);
    this.rr = next;
    return events;
  }

  /** The event of a record; undefined for a skipped malformed record; throws when it cannot be delivered. */
  private decode(st: PartitionState, rec: ConsumedRecord): SourceEvent | undefined {
    const id = rec.offset <= MAX_SAFE_OFFSET ? Number(rec.offset) : rec.offset;
    const value = rec.value ?? Buffer.alloc(0);
    let metadata: Metadata;
    let layout;
    try {
      layout = decodeValue(value);
      if (layout.kind === 'end') {
        st.skips.set(rec.offset, rec.offset + 1n);
        return new EventRecord(st.index, NO_MORE_EVENTS, new Metadata({}), DataSegments.EMPTY, decodeHeaders(rec.headers));
      }
      metadata = deserializeRecordAt(this.o.serializer as SerializerImpl, value, layout.metadataStart, layout.metadataSize);
    } catch (err) {
      const e = err instanceof MalformedRecord ? err : new MalformedRecord(err instanceof Error ? err.message : String(err));
      if (this.d.onMalformed === 'skip' && st.rejected.has(rec.offset)) {
        // it rejected a pull already: now it counts as delivered (and never blocks a commit)
        st.rejected.delete(rec.offset);
        st.skips.set(rec.offset, rec.offset + 1n);
        log.warn(`Kafka consumer of ${this.d.topic}: skipped malformed record at offset ${rec.offset} of partition ${st.index}: ${e.message}`);
        return undefined;
      }
      throw e;
    }
    const data =
      layout.dataSize === 0
        ? DataSegments.EMPTY
        : selectFromBuffer(metadata, value.subarray(layout.dataStart, layout.dataStart + layout.dataSize), this.o.dataSelector, this.o.dataAllocator);
    return new EventRecord(st.index, id, metadata, data, decodeHeaders(rec.headers));
  }

  // -------------------------------------------------------------------------------------------
  // Positions

  async commit(positions: ReadonlyMap<number, EventID>): Promise<void> {
    if (this.mode === 'anonymous') return;
    const out = new Map<number, bigint>();
    for (const [p, id] of positions) {
      const st = this.states.get(p);
      if (st === undefined) continue;
      if (this.mode === 'group' && !st.owned) continue; // revoked: the new owner decides
      let pos = id;
      // skipped records (malformed values, end markers) never block a position
      for (let guard = 0; guard < 1_000_000 && st.skips.has(pos); guard++) pos = st.skips.get(pos) as bigint;
      for (const k of st.skips.keys()) if (k < pos) st.skips.delete(k);
      out.set(p, pos);
    }
    if (out.size === 0) return;
    try {
      if (this.mode === 'group') await (this.d.group as KafkaGroupClient).commit(this.d.topic, out);
      else await this.d.admin.commitOffsets(this.o.consumerName, this.d.topic, out);
    } catch (err) {
      throw kafkaError(err, `commit of consumer "${this.o.consumerName}" failed`);
    }
  }

  private ownedPartitions(): number[] {
    return [...this.states.values()].filter((st) => st.owned).map((st) => st.index);
  }

  async endPositions(): Promise<Map<number, EventID>> {
    const parts = this.ownedPartitions();
    if (parts.length === 0) return new Map();
    try {
      return await this.d.fetcher.listOffsets(this.d.topic, parts, 'latest', this.d.settings.isolation);
    } catch (err) {
      throw kafkaError(err);
    }
  }

  readPositions(): Map<number, { at: EventID; handedOut: EventID | undefined }> {
    const out = new Map<number, { at: EventID; handedOut: EventID | undefined }>();
    for (const st of this.states.values()) {
      if (!st.owned) continue;
      // a buffered record is the next one handed out; with none, the fetch offset is past every control record
      const at = st.buffered > 0 ? (st.buffer[st.head] as ConsumedRecord).offset : st.position;
      if (at !== undefined) out.set(st.index, { at, handedOut: st.delivered });
    }
    return out;
  }

  async startPositions(): Promise<Map<number, EventID>> {
    const out = new Map<number, EventID>();
    for (const st of this.states.values()) if (st.owned && st.start !== undefined) out.set(st.index, st.start);
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.growthTimer !== undefined) clearTimeout(this.growthTimer);
    this.notifier.notify();
    // nothing is persisted here (the consumer committed before): connections close in the
    // background, except that a group member leaves its group before close() resolves (a member
    // that never left holds its partitions until its session times out)
    void this.d.fetcher.close().catch(() => undefined);
    if (this.d.group !== undefined) await this.d.group.close().catch(() => undefined);
  }
}
