/**
 * An in-memory Kafka behind the client-adapter interfaces (src/drivers/kafka/client.ts), for unit
 * tests of the driver without a broker: topics, partitions as record arrays, committed offsets,
 * long-poll fetches, and hooks to inject produce failures and observe concurrency.
 */
import { randomUUID } from 'node:crypto';
import type {
  FetchParams,
  FetchedPartition,
  KafkaAdminClient,
  KafkaClientFactory,
  KafkaFetchClient,
  KafkaGroupClient,
  KafkaProducerClient,
  ProduceRun,
  TopicCreation,
  TopicSpec,
} from '../../../src/drivers/kafka/client.js';
import { KafkaClientError } from '../../../src/drivers/kafka/client-errors.js';
import type { Compression, ConnectionSettings, ConsumerSettings, Isolation, ProducerSettings } from '../../../src/drivers/kafka/options.js';

export interface FakeRecord {
  value: Buffer | null;
  headers: [Buffer, Buffer][];
  timestamp: bigint;
}

export interface FakeTopic {
  /** A new one for each creation (a topic re-created under the same name has another). */
  id: string;
  partitions: FakeRecord[][];
  configs: Record<string, string>;
  replicationFactor: number;
}

export class FakeCluster {
  readonly topics = new Map<string, FakeTopic>();
  /** group → "topic:partition" → committed offset */
  readonly commits = new Map<string, Map<string, bigint>>();
  readonly commitKinds: { group: string; kind: 'member' | 'standalone' }[] = [];
  /** The assignment callback of each group member that joined (the last one per group). */
  private readonly members = new Map<string, (partitions: number[]) => void>();

  /** A rebalance: the group's member now owns exactly `partitions`. */
  rebalance(group: string, partitions: number[]): void {
    const onAssign = this.members.get(group);
    if (onAssign === undefined) throw new Error(`no member of group ${group} joined`);
    onAssign(partitions);
  }
  brokers = 1;
  /** Produce calls to fail (each failure consumes one). */
  failSends = 0;
  sendCalls = 0;
  inflightSends = 0;
  maxInflightSends = 0;
  producersCreated = 0;
  /** Records per send call. */
  readonly sendSizes: number[] = [];
  sendDelayMs = 0;
  reachable = true;
  private waiters: (() => void)[] = [];

  addTopic(name: string, partitions: number): FakeTopic {
    const t: FakeTopic = { id: randomUUID(), partitions: Array.from({ length: partitions }, () => []), configs: {}, replicationFactor: 1 };
    this.topics.set(name, t);
    return t;
  }

  append(topic: string, partition: number, value: Buffer | null, headers: [Buffer, Buffer][] = []): bigint {
    const t = this.topics.get(topic);
    if (t === undefined) throw new KafkaClientError(`Unknown topic ${topic}`, 'user', ['UNKNOWN_TOPIC_OR_PARTITION']);
    const p = t.partitions[partition] as FakeRecord[];
    p.push({ value, headers, timestamp: BigInt(Date.now()) });
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
    return BigInt(p.length - 1);
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  private check(): void {
    if (!this.reachable) throw new KafkaClientError('Cannot reach the Kafka cluster (connect ECONNREFUSED 127.0.0.1:1)', 'network', [], true);
  }

  factory(): KafkaClientFactory {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const c = this;
    return {
      compressionAvailable: (x: Compression) => x !== 'zstd',
      admin: (_conn: ConnectionSettings) => c.admin(),
      producer: (_conn: ConnectionSettings, _p: ProducerSettings) => c.producer(),
      fetcher: (_conn: ConnectionSettings) => c.fetcher(),
      groupMember: (_conn: ConnectionSettings, group: string, _s: ConsumerSettings) => c.group(group),
    };
  }

  private commitMap(group: string): Map<string, bigint> {
    let m = this.commits.get(group);
    if (m === undefined) this.commits.set(group, (m = new Map()));
    return m;
  }

  admin(): KafkaAdminClient {
    const c = this;
    return {
      async cluster() {
        c.check();
        return { clusterId: 'fake-cluster', brokers: c.brokers };
      },
      async listTopics() {
        c.check();
        return [...c.topics.keys()].sort();
      },
      async describeTopics(names) {
        c.check();
        const out = new Map<string, number>();
        for (const n of names) {
          const t = c.topics.get(n);
          if (t !== undefined) out.set(n, t.partitions.length);
        }
        return out;
      },
      async createTopics(specs: readonly TopicSpec[]): Promise<TopicCreation[]> {
        c.check();
        return specs.map((s) => {
          if (c.topics.has(s.name)) return { name: s.name, error: 'TOPIC_ALREADY_EXISTS', message: `Topic '${s.name}' already exists.` };
          if (s.replicationFactor > c.brokers) return { name: s.name, error: 'INVALID_REPLICATION_FACTOR', message: 'Replication factor is larger than the number of brokers' };
          const t = c.addTopic(s.name, s.partitions);
          t.configs = { ...s.configs };
          t.replicationFactor = s.replicationFactor;
          return { name: s.name, error: undefined, message: undefined };
        });
      },
      async deleteTopics(names) {
        c.check();
        for (const n of names) c.topics.delete(n);
      },
      async committedOffsets(group, topic, partitions) {
        const m = c.commitMap(group);
        return new Map(partitions.map((p) => [p, m.get(`${topic}:${p}`) ?? -1n]));
      },
      async commitOffsets(group, topic, offsets) {
        const m = c.commitMap(group);
        for (const [p, o] of offsets) m.set(`${topic}:${p}`, o);
        c.commitKinds.push({ group, kind: 'standalone' });
      },
      async close() {},
    };
  }

  producer(): KafkaProducerClient {
    const c = this;
    c.producersCreated++;
    let closed = false;
    return {
      async send(runs: readonly ProduceRun[]) {
        if (closed) throw new KafkaClientError('Client is closed', 'network');
        c.sendCalls++;
        c.inflightSends++;
        c.maxInflightSends = Math.max(c.maxInflightSends, c.inflightSends);
        c.sendSizes.push(runs.reduce((n, r) => n + r.records.count, 0));
        try {
          if (c.sendDelayMs > 0) await new Promise((r) => setTimeout(r, c.sendDelayMs));
          else await Promise.resolve();
          c.check();
          if (c.failSends > 0) {
            c.failSends--;
            throw new KafkaClientError('NOT_ENOUGH_REPLICAS: injected failure', 'protocol', ['NOT_ENOUGH_REPLICAS'], true);
          }
          const bases = new Map<string, bigint>();
          for (const r of runs) {
            for (let i = 0; i < r.records.count; i++) {
              const value = Buffer.allocUnsafe(r.records.valueLength(i));
              r.records.writeValue(i, value, 0);
              const off = c.append(r.topic, r.partition, value, (r.records.headers(i) ?? []) as [Buffer, Buffer][]);
              const k = `${r.topic}:${r.partition}`;
              if (!bases.has(k)) bases.set(k, off);
            }
          }
          return bases;
        } finally {
          c.inflightSends--;
        }
      },
      async close() {
        closed = true;
      },
    };
  }

  fetcher(): KafkaFetchClient {
    const c = this;
    return {
      async leaders(topic) {
        c.check();
        const t = c.topics.get(topic);
        if (t === undefined) throw new KafkaClientError(`Unknown topic ${topic}`, 'user', ['UNKNOWN_TOPIC_OR_PARTITION']);
        return { id: t.id, leaders: new Map(t.partitions.map((_, i) => [i, 1])) };
      },
      async partitionCount(topic) {
        return c.topics.get(topic)?.partitions.length ?? 0;
      },
      async fetch(_leader, topic, partitions, p: FetchParams): Promise<FetchedPartition[]> {
        c.check();
        const build = (): FetchedPartition[] =>
          partitions.map(({ partition, offset }) => {
            const t = c.topics.get(topic);
            // as a broker that fetches by topic id (Fetch v13+): a topic re-created under the name is another topic
            if (t !== undefined && p.topicId !== undefined && t.id !== p.topicId) {
              return { partition, error: 'UNKNOWN_TOPIC_ID', highWatermark: -1n, lastStableOffset: -1n, logStartOffset: -1n, abortedTransactions: [], batches: [] };
            }
            const recs = t?.partitions[partition];
            if (recs === undefined) {
              return { partition, error: 'UNKNOWN_TOPIC_OR_PARTITION', highWatermark: -1n, lastStableOffset: -1n, logStartOffset: -1n, abortedTransactions: [], batches: [] };
            }
            const end = BigInt(recs.length);
            if (offset > end || offset < 0n) {
              return { partition, error: 'OFFSET_OUT_OF_RANGE', highWatermark: end, lastStableOffset: end, logStartOffset: 0n, abortedTransactions: [], batches: [] };
            }
            const batches = [];
            for (let o = Number(offset); o < recs.length && batches.length < 500; o++) {
              const r = recs[o] as FakeRecord;
              batches.push({
                firstOffset: BigInt(o),
                lastOffsetDelta: 0,
                firstTimestamp: r.timestamp,
                producerId: -1n,
                transactional: false,
                control: false,
                records: [{ offsetDelta: 0, value: r.value, headers: r.headers }],
              });
            }
            return { partition, error: undefined, highWatermark: end, lastStableOffset: end, logStartOffset: 0n, abortedTransactions: [], batches };
          });
        let out = build();
        if (out.every((x) => x.batches.length === 0 && x.error === undefined) && p.maxWaitMs > 0) {
          await c.wait(p.maxWaitMs);
          out = build();
        }
        return out;
      },
      async listOffsets(topic, partitions, which: 'earliest' | 'latest', _i: Isolation) {
        c.check();
        const t = c.topics.get(topic);
        return new Map(partitions.map((p) => [p, which === 'earliest' ? 0n : BigInt(t?.partitions[p]?.length ?? 0)]));
      },
      async close() {},
    };
  }

  group(group: string): KafkaGroupClient {
    const c = this;
    let joined = '';
    return {
      async join(topic, onAssign) {
        c.check();
        joined = topic;
        c.members.set(group, onAssign);
        onAssign((c.topics.get(topic)?.partitions ?? []).map((_, i) => i));
      },
      async rejoin() {
        c.check();
        c.rebalance(group, [...(c.topics.get(joined)?.partitions ?? []).keys()]);
      },
      async commit(topic, offsets) {
        const m = c.commitMap(group);
        for (const [p, o] of offsets) m.set(`${topic}:${p}`, o);
        c.commitKinds.push({ group, kind: 'member' });
      },
      async committed(topic, partitions) {
        const m = c.commitMap(group);
        return new Map(partitions.map((p) => [p, m.get(`${topic}:${p}`) ?? -1n]));
      },
      async close() {},
    };
  }
}
