/**
 * The client-adapter boundary (dependencies.md §4): the small set of Kafka operations the driver
 * needs, in client-neutral types. `adapter.ts` implements it with @platformatic/kafka (the only
 * module importing the library); unit tests plug a fake here. Every method rejects with a
 * {@link KafkaClientError}.
 */
import type { Compression, ConnectionSettings, ConsumerSettings, Isolation, ProducerSettings } from './options.js';
import type { RecordRun } from './record-batch.js';

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}

/** Outcome of one topic of a CreateTopics request. */
export interface TopicCreation {
  name: string;
  /** Broker error name (e.g. `TOPIC_ALREADY_EXISTS`), undefined when created. */
  error: string | undefined;
  message: string | undefined;
}

export interface KafkaAdminClient {
  /** Cluster id and number of live brokers (a metadata request: also the connectivity probe). */
  cluster(): Promise<{ clusterId: string; brokers: number }>;
  /** Topic names (internal topics excluded). */
  listTopics(): Promise<string[]>;
  /** Partition counts of the topics that exist (fresh metadata). */
  describeTopics(names: readonly string[]): Promise<Map<string, number>>;
  /** Creates the topics in one request; per-topic outcome. */
  createTopics(specs: readonly TopicSpec[], timeoutMs: number): Promise<TopicCreation[]>;
  deleteTopics(names: readonly string[]): Promise<void>;
  /** Committed offsets of a group (-1n when none). */
  committedOffsets(group: string, topic: string, partitions: readonly number[]): Promise<Map<number, bigint>>;
  /** Standalone (non-member) offset commit: generation -1, member "". */
  commitOffsets(group: string, topic: string, offsets: ReadonlyMap<number, bigint>): Promise<void>;
  close(): Promise<void>;
}

/** Records for one partition (several runs of a partition follow each other in its batch). */
export interface ProduceRun {
  topic: string;
  partition: number;
  records: RecordRun;
}

export interface KafkaProducerClient {
  /**
   * Sends the records in one request per leader; resolves with the base offset of each
   * `topic:partition` (the runs of one partition form one batch, in array order).
   */
  send(runs: readonly ProduceRun[]): Promise<Map<string, bigint>>;
  close(force?: boolean): Promise<void>;
}

export interface RawRecord {
  offsetDelta: number;
  value: Buffer | null;
  headers: readonly [Buffer | null, Buffer | null][];
}

export interface RawBatch {
  firstOffset: bigint;
  lastOffsetDelta: number;
  firstTimestamp: bigint;
  producerId: bigint;
  transactional: boolean;
  control: boolean;
  records: readonly RawRecord[];
}

export interface FetchedPartition {
  partition: number;
  /** Broker error name, undefined for none. */
  error: string | undefined;
  highWatermark: bigint;
  lastStableOffset: bigint;
  logStartOffset: bigint;
  abortedTransactions: readonly { producerId: bigint; firstOffset: bigint }[];
  batches: readonly RawBatch[];
}

export interface TopicLeaders {
  /** The topic's UUID: a topic deleted and created again under the same name has another. */
  id: string;
  /** Partition → leader node id. */
  leaders: Map<number, number>;
}

export interface FetchParams {
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  partitionMaxBytes: number;
  isolation: Isolation;
  /** The topic's id as the consumer knows it: metadata with another (the topic re-created) fails the fetch (UNKNOWN_TOPIC_ID). */
  topicId?: string | undefined;
}

/** Reads partitions: metadata, offsets and raw fetches on connections of its own (long polls). */
export interface KafkaFetchClient {
  /** The topic's id and its partitions' leaders (fresh metadata when `refresh`); rejects when the topic is unknown. */
  leaders(topic: string, refresh: boolean): Promise<TopicLeaders>;
  partitionCount(topic: string, refresh: boolean): Promise<number>;
  /** Sends one Fetch request to `leader` for the given partitions. */
  fetch(leader: number, topic: string, partitions: readonly { partition: number; offset: bigint }[], p: FetchParams): Promise<FetchedPartition[]>;
  /** Earliest (log start) or latest (high watermark, or LSO with read_committed) offsets. */
  listOffsets(topic: string, partitions: readonly number[], which: 'earliest' | 'latest', isolation: Isolation): Promise<Map<number, bigint>>;
  close(): Promise<void>;
}

/** A consumer-group member (classic protocol): heartbeats, rebalances, member commits. */
export interface KafkaGroupClient {
  /** Joins; `onAssign` is called with this member's partitions of `topic` after every (re)join. */
  join(topic: string, onAssign: (partitions: number[]) => void): Promise<void>;
  /** Offset commit as a member of the current generation. */
  commit(topic: string, offsets: ReadonlyMap<number, bigint>): Promise<void>;
  committed(topic: string, partitions: readonly number[]): Promise<Map<number, bigint>>;
  /** Joins again (the topic grew: a leader that rejoins makes the coordinator rebalance). */
  rejoin(): Promise<void>;
  /** Leaves the group and closes. */
  close(): Promise<void>;
}

export interface KafkaClientFactory {
  compressionAvailable(c: Compression): boolean;
  admin(conn: ConnectionSettings): KafkaAdminClient;
  producer(conn: ConnectionSettings, p: ProducerSettings): KafkaProducerClient;
  fetcher(conn: ConnectionSettings): KafkaFetchClient;
  groupMember(conn: ConnectionSettings, group: string, c: ConsumerSettings): KafkaGroupClient;
}
