/**
 * The service-provider interface every driver implements. The generic layer (Driver, TopicHandle,
 * Producer, Consumer) owns the semantics shared by all drivers — validation, partition
 * selection, serialization, batching, ordering, back-pressure, pull queues, acknowledgement
 * tracking — so a driver only stores and fetches batches of encoded events.
 */
import type { PartitionSelectorImpl, SerializerImpl, ValidatorImpl } from './components.js';
import type { DataAllocator, DataSelector } from './data-selection.js';
import type { DataSegments } from './data-segments.js';
import type { Json, JsonObject } from './json.js';
import type { PartitionInfo } from './metadata.js';

import type { EventRecord } from './event.js';
export type { EventID, Headers } from './event.js';
import type { EventID, Headers } from './event.js';
export type StartFrom = 'committed' | 'earliest' | 'latest';

/** Persisted configurations of a topic's components (each has a string `type`). */
export interface TopicComponentsConfig {
  validator: JsonObject;
  serializer: JsonObject;
  partitionSelector: JsonObject;
}

export interface DriverImpl {
  /** Creates a topic; fails when it exists. */
  createTopic(name: string, options: JsonObject, components: TopicComponentsConfig): Promise<void>;
  /** Opens a topic; resolves undefined when the driver has no such topic. */
  openTopic(name: string): Promise<TopicImpl | undefined>;
  topicExists(name: string): Promise<boolean>;
  /** Topic name → driver-defined description (sorted by the caller). */
  listTopics(): Promise<Map<string, Json>>;
  deleteTopic(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Events encoded by a producer, ready to be stored as one batch in one partition. */
export interface EventBatch {
  readonly count: number;
  /**
   * Serialized metadata records back to back, in chunks (each chunk holds whole records), so
   * merged batches are written with one vectored write and no copy.
   */
  readonly metadata: readonly Buffer[];
  /** Total bytes of `metadata`. */
  readonly metadataSize: number;
  /** End offset of each record within the concatenated chunks (record i spans [ends[i-1] or 0, ends[i])). */
  readonly metadataEnds: readonly number[];
  /** Data of each event (possibly empty). */
  readonly data: readonly DataSegments[];
  /** Headers of each event, or undefined when no event of the batch has headers. */
  readonly headers: readonly (Headers | undefined)[] | undefined;
}

/** Calls `fn` with each serialized record of a batch (a view into the batch's chunks). */
export function forEachRecord(batch: EventBatch, fn: (i: number, record: Buffer) => void): void {
  let chunk = 0;
  let chunkStart = 0;
  let start = 0;
  for (let i = 0; i < batch.count; i++) {
    const end = batch.metadataEnds[i] as number;
    while (start >= chunkStart + (batch.metadata[chunk] as Buffer).length) {
      chunkStart += (batch.metadata[chunk] as Buffer).length;
      chunk++;
    }
    fn(i, (batch.metadata[chunk] as Buffer).subarray(start - chunkStart, end - chunkStart));
    start = end;
  }
}

export interface TopicWriter {
  /** Stores a batch atomically in `partition`; resolves with the id of each event. */
  append(partition: number, batch: EventBatch): Promise<EventIds>;
  /**
   * Appends to one partition the producer may have in flight at once (default 1: it waits for
   * each append, and merges what queued meanwhile into the next). A writer that allows more stores
   * concurrent appends of a partition in call order (kafka: idempotent sequences, max.in.flight).
   */
  readonly maxConcurrentAppends?: number;
  /**
   * The producer now waits for its appends to finish (back-pressure or flush), so no more records
   * come meanwhile: what the writer holds back to gather larger requests (linger) goes at once.
   */
  sendNow?(): void;
  /** Writes an end-of-stream marker in each partition (drivers that have one, e.g. kafka). */
  markEndOfStream?(partitions?: readonly number[]): Promise<void>;
  /** Makes the given partitions durable according to the driver's flush policy (producer flush). */
  sync(partitions: ReadonlySet<number>): Promise<void>;
  close(): Promise<void>;
}

/** Ids of a stored batch: consecutive from `first`, or listed. */
export type EventIds = { first: EventID } | { ids: readonly EventID[] };

export interface SourceOptions {
  consumerName: string;
  /** Partition indices to read (never empty). */
  partitions: readonly number[];
  /** The consumer's `targets` as given ([] = all partitions, e.g. Kafka group membership). */
  targets: readonly number[];
  startFrom: StartFrom;
  /** Explicit start ids of some partitions (they override startFrom there; clamped to the partition's end). */
  startAt: ReadonlyMap<number, EventID> | undefined;
  serializer: SerializerImpl;
  dataSelector: DataSelector | undefined;
  dataAllocator: DataAllocator | undefined;
  /** Preferred number of events per fetch. */
  batchHint: number;
  /** Driver-specific consumer options. */
  options: JsonObject;
}

/**
 * Consecutive events of one partition in their stored form (ids `first` …, records encoded by the topic's
 * serializer, headers as stored): what a source can hand to a writer of a topic with the same serializer, to copy
 * events without decoding them (forwarding between two topics of one driver).
 */
export interface StoredRun {
  readonly partitionIndex: number;
  readonly first: number;
  readonly batch: EventBatch;
}

/** An event as a source delivers it (sources construct EventRecords). */
export type SourceEvent = EventRecord;

export interface ConsumerSource {
  /**
   * Resolves with 1..max available events (in id order per partition, fair across partitions),
   * waiting without spinning until at least one is available; resolves [] when `signal` aborts.
   * With `wait` false it resolves at once, possibly with [] (used for prefetching).
   */
  fetch(max: number, signal: AbortSignal, wait: boolean): Promise<SourceEvent[]>;
  /**
   * Optional: what fetch() would deliver, as {@link StoredRun}s (several runs of one partition are consecutive);
   * every run's events are delivered in the consumer's sense (acknowledged and committed like fetched events).
   */
  fetchStored?(max: number, signal: AbortSignal, wait: boolean): Promise<StoredRun[]>;
  /** Persists next positions (partition index → next id to deliver). */
  commit(positions: ReadonlyMap<number, EventID>): Promise<void>;
  /** Current end (next id to be written) of each partition read, for lag and stop-at-end. */
  endPositions(): Promise<Map<number, EventID>>;
  /** The id each partition started at (resolved start position). */
  startPositions(): Promise<Map<number, EventID>>;
  /**
   * Optional, for sources whose ids have gaps (kafka: transaction markers, skipped records): per partition, where its
   * reading stands (`at`: no event below it is still to be handed out by fetch()) and the id after the last event
   * fetch() handed out (`handedOut`, undefined before any). Partitions not known yet are left out.
   */
  readPositions?(): Map<number, { at: EventID; handedOut: EventID | undefined }>;
  /**
   * Sources whose partitions can be taken away (a group rebalance) register the consumer's
   * handler: it drops the events of those partitions that it fetched but did not deliver (the new
   * owner reads them), and returns the id of the first one dropped per partition, so that the
   * source reads from there should the partition come back.
   */
  onRevoke?(handler: (partitions: ReadonlySet<number>) => Map<number, EventID>): void;
  close(): Promise<void>;
}

export interface WriterOptions {
  producerName: string;
  /** Driver-specific producer options. */
  options: JsonObject;
  batchSize: number | 'adaptive';
  lingerMs: number;
}

export interface TopicImpl {
  readonly partitions: readonly PartitionInfo[];
  readonly components: TopicComponentsConfig;
  /** Stable id of this topic's stream for provenance (forwarding.md §4). */
  readonly sourceId: string;
  /** The driver's default `ackIntervalMs` for consumers (e.g. kafka `commit_interval_ms`). */
  readonly defaultAckIntervalMs?: number;
  createWriter(options: WriterOptions): Promise<TopicWriter>;
  createSource(options: SourceOptions): Promise<ConsumerSource>;
  close(): Promise<void>;
}

/** Components of an opened topic. */
export interface TopicComponents {
  validator: ValidatorImpl;
  serializer: SerializerImpl;
  partitionSelector: PartitionSelectorImpl;
}
