/**
 * The client adapter: the ONLY module importing @platformatic/kafka (1.35, pinned). It implements
 * the client-neutral interfaces of `client.ts` and turns the library's error trees into
 * {@link KafkaClientError}s. Version-specific workarounds (docs/notes/platformatic-kafka.md) live
 * here: raw CreateTopics (one request, no client-side de-duplication), raw Metadata (no retries
 * on unknown topics), raw Fetch (sessionless long polls on a pool of our own, no client-side
 * transaction filter), standalone commits through the admin's OffsetCommit.
 */
import {
  Admin,
  ConnectionPool,
  Consumer,
  FetchIsolationLevels,
  IS_CONTROL,
  IS_TRANSACTIONAL,
  ListOffsetTimestamps,
  MultipleErrors,
  ProduceAcks,
  Producer,
  TimeoutError,
  compressionsAlgorithms,
  kGetApi,
  kGetBootstrapConnection,
  protocolErrorsCodesById,
  type Base,
  type BaseOptions,
  type Connection,
  type ConsumerOptions,
  type RecordsBatch,
} from '@platformatic/kafka';
import { log } from '../../api/logging.js';
import type {
  FetchParams,
  FetchedPartition,
  KafkaAdminClient,
  KafkaClientFactory,
  KafkaFetchClient,
  KafkaGroupClient,
  KafkaProducerClient,
  ProduceRecord,
  RawBatch,
  TopicCreation,
  TopicSpec,
} from './client.js';
import { KafkaClientError, type KafkaErrorKind } from './client-errors.js';
import type { Compression, ConnectionSettings, ConsumerSettings, Isolation, ProducerSettings } from './options.js';

// ---------------------------------------------------------------------------------------------
// Errors

interface ErrorNode {
  message: string;
  code?: string;
  apiId?: string;
  serverErrorMessage?: string | null;
  canRetry?: boolean;
  errors?: unknown[];
  cause?: unknown;
  response?: unknown;
}

function children(e: ErrorNode): ErrorNode[] {
  const out: ErrorNode[] = [];
  if (Array.isArray(e.errors)) for (const c of e.errors) if (c instanceof Error) out.push(c as unknown as ErrorNode);
  if (e.cause instanceof Error) out.push(e.cause as unknown as ErrorNode);
  return out;
}

function walk(e: ErrorNode, fn: (n: ErrorNode) => void, depth = 0): void {
  fn(e);
  if (depth < 12) for (const c of children(e)) walk(c, fn, depth + 1);
}

function describeLeaf(n: ErrorNode): string {
  if (n.apiId !== undefined) return n.serverErrorMessage ? `${n.apiId}: ${n.serverErrorMessage}` : `${n.apiId}: ${n.message}`;
  return n.message.replace(/\.$/, '');
}

/** One readable KafkaClientError from any error the library raised. */
export function toClientError(err: unknown): KafkaClientError {
  if (err instanceof KafkaClientError) return err;
  if (!(err instanceof Error)) return new KafkaClientError(String(err), 'other');
  const root = err as unknown as ErrorNode;
  const leaves: ErrorNode[] = [];
  const apiIds: string[] = [];
  let kind: KafkaErrorKind = 'other';
  let auth = false;
  let timeout = false;
  let network = false;
  let unsupported = false;
  let user = false;
  let retriable = true;
  walk(root, (n) => {
    if (n.apiId !== undefined && !apiIds.includes(n.apiId)) apiIds.push(n.apiId);
    if (n.code === 'PLT_KFK_AUTHENTICATION' || n.apiId === 'SASL_AUTHENTICATION_FAILED' || n.apiId === 'UNSUPPORTED_SASL_MECHANISM' || n.apiId === 'ILLEGAL_SASL_STATE') auth = true;
    if (n instanceof TimeoutError) timeout = true;
    if (n.code === 'PLT_KFK_NETWORK' || (n as { syscall?: string }).syscall !== undefined) network = true;
    if (n.code === 'PLT_KFK_UNSUPPORTED_COMPRESSION' || n.code === 'PLT_KFK_UNSUPPORTED_API' || n.code === 'PLT_KFK_UNSUPPORTED') unsupported = true;
    if (n.code === 'PLT_KFK_USER') user = true;
    if (n.canRetry === false) retriable = false;
    if (children(n).length === 0) leaves.push(n);
  });
  const details: string[] = [];
  for (const l of leaves) {
    const d = describeLeaf(l);
    if (!details.includes(d)) details.push(d);
  }
  let message: string;
  if (auth) {
    kind = 'auth';
    retriable = false;
    const server = leaves.find((l) => l.serverErrorMessage)?.serverErrorMessage;
    message = `SASL authentication failed${server ? `: ${server}` : details.length > 0 ? `: ${details.join('; ')}` : ''}`;
  } else {
    if (unsupported) kind = 'unsupported';
    else if (apiIds.length > 0) kind = 'protocol';
    else if (timeout) kind = 'timeout';
    else if (network) kind = 'network';
    else if (user) kind = 'user';
    const top = root.message.replace(/\.$/, '');
    const generic = /failed \d+ times|Cannot connect to any broker|failed\.?$|^Listing|^Producing/.test(root.message);
    if (kind === 'network' || kind === 'timeout') {
      message = `Cannot reach the Kafka cluster (${details.join('; ')})`;
    } else if (details.length === 0 || (details.length === 1 && details[0] === top)) message = top;
    else message = generic ? details.join('; ') : `${top}: ${details.join('; ')}`;
  }
  if (unsupported) retriable = false;
  return new KafkaClientError(message, kind, apiIds, retriable, { cause: err });
}

async function guard<T>(p: () => Promise<T>): Promise<T> {
  try {
    return await p();
  } catch (err) {
    throw toClientError(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Connections and raw API calls

function baseOptions(c: ConnectionSettings): BaseOptions {
  const o: BaseOptions = {
    clientId: c.clientId,
    bootstrapBrokers: c.brokers,
    connectTimeout: c.connectTimeoutMs,
    requestTimeout: c.requestTimeoutMs,
    timeout: Math.min(c.requestTimeoutMs, 30000),
    retries: c.retries,
    retryDelay: c.retryDelayMs,
    metadataMaxAge: c.metadataMaxAgeMs,
  };
  if (c.tls !== undefined) {
    const t = c.tls;
    o.tls = { rejectUnauthorized: t.rejectUnauthorized };
    if (t.ca !== undefined) o.tls.ca = t.ca;
    if (t.cert !== undefined) o.tls.cert = t.cert;
    if (t.key !== undefined) o.tls.key = t.key;
    if (t.passphrase !== undefined) o.tls.passphrase = t.passphrase;
    if (!t.checkHostname) o.tls.checkServerIdentity = () => undefined;
    if (t.sni) o.tlsServerName = true;
  }
  if (c.sasl !== undefined) {
    const s = c.sasl;
    if (s.mechanism === 'OAUTHBEARER') o.sasl = { mechanism: 'OAUTHBEARER', token: s.token ?? (() => '') };
    else o.sasl = { mechanism: s.mechanism, username: s.username ?? '', password: s.password ?? '' };
  }
  return o;
}

interface RawApi<A extends unknown[], R> {
  async(connection: Connection, ...args: A): Promise<R>;
  version: number;
}

function getApi<A extends unknown[], R>(client: Base, name: string): Promise<RawApi<A, R>> {
  return new Promise((resolve, reject) => {
    client[kGetApi]<A, R>(name, (error, api) => (error ? reject(error) : resolve(api as unknown as RawApi<A, R>)));
  });
}

function bootstrapConnection(client: Base): Promise<Connection> {
  return new Promise((resolve, reject) => {
    client[kGetBootstrapConnection]((error, connection) => (error ? reject(error) : resolve(connection as Connection)));
  });
}

/** The parsed response of a ResponseError (per-item errors), else rethrows. */
function responseOf<R>(err: unknown): R {
  const r = (err as { response?: unknown }).response;
  if (err instanceof MultipleErrors && r !== undefined && r !== null && typeof r === 'object') return r as R;
  throw err;
}

function isolationLevel(i: Isolation): number {
  return i === 'read_committed' ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED;
}

function errorName(code: number): string {
  return protocolErrorsCodesById[code] ?? `ERROR_${code}`;
}

interface MetadataTopic {
  errorCode: number;
  name: string | null;
  topicId: string;
  isInternal: boolean;
  partitions: { partitionIndex: number; leaderId: number }[];
}

interface MetadataResp {
  brokers: unknown[];
  clusterId: string | null;
  topics: MetadataTopic[];
}

async function rawMetadata(client: Base, topics: readonly string[] | null): Promise<{ brokers: number; clusterId: string; topics: MetadataTopic[] }> {
  const api = await getApi<[string[] | null, boolean, boolean], MetadataResp>(client, 'Metadata');
  const conn = await bootstrapConnection(client);
  let resp: MetadataResp;
  try {
    resp = await api.async(conn, topics === null ? null : [...topics], false, false);
  } catch (err) {
    resp = responseOf(err);
  }
  return { brokers: resp.brokers.length, clusterId: resp.clusterId ?? '', topics: resp.topics };
}

// ---------------------------------------------------------------------------------------------
// Admin

class PlatformaticAdmin implements KafkaAdminClient {
  private readonly admin: Admin;
  constructor(conn: ConnectionSettings) {
    this.admin = new Admin(baseOptions(conn));
  }

  cluster(): Promise<{ clusterId: string; brokers: number }> {
    return guard(async () => {
      const md = await rawMetadata(this.admin, []);
      return { clusterId: md.clusterId, brokers: md.brokers };
    });
  }

  listTopics(): Promise<string[]> {
    return guard(async () => {
      const md = await rawMetadata(this.admin, null);
      return md.topics.filter((t) => !t.isInternal && t.errorCode === 0 && t.name !== null).map((t) => t.name as string);
    });
  }

  describeTopics(names: readonly string[]): Promise<Map<string, number>> {
    return guard(async () => {
      const out = new Map<string, number>();
      if (names.length === 0) return out;
      const md = await rawMetadata(this.admin, names);
      for (const t of md.topics) if (t.errorCode === 0 && t.name !== null) out.set(t.name, t.partitions.length);
      return out;
    });
  }

  createTopics(specs: readonly TopicSpec[], timeoutMs: number): Promise<TopicCreation[]> {
    return guard(async () => {
      type Req = { name: string; numPartitions: number; replicationFactor: number; assignments: never[]; configs: { name: string; value: string }[] };
      type Resp = { topics: { name: string; errorCode: number; errorMessage: string | null }[] };
      const api = await getApi<[Req[], number, boolean], Resp>(this.admin, 'CreateTopics');
      const conn = await bootstrapConnection(this.admin);
      const reqs: Req[] = specs.map((s) => ({
        name: s.name,
        numPartitions: s.partitions,
        replicationFactor: s.replicationFactor,
        assignments: [],
        configs: Object.entries(s.configs).map(([name, value]) => ({ name, value })),
      }));
      let resp: Resp;
      try {
        resp = await api.async(conn, reqs, timeoutMs, false);
      } catch (err) {
        resp = responseOf(err);
      }
      const out: TopicCreation[] = [];
      for (const t of resp.topics) {
        out.push({ name: t.name, error: t.errorCode === 0 ? undefined : errorName(t.errorCode), message: t.errorMessage ?? undefined });
      }
      return out;
    });
  }

  deleteTopics(names: readonly string[]): Promise<void> {
    return guard(() => this.admin.deleteTopics({ topics: [...names] }));
  }

  committedOffsets(group: string, topic: string, partitions: readonly number[]): Promise<Map<number, bigint>> {
    return guard(async () => {
      const r = await this.admin.listConsumerGroupOffsets({ groups: [{ groupId: group, topics: [{ name: topic, partitionIndexes: [...partitions] }] }] });
      const out = new Map<number, bigint>();
      for (const g of r) {
        for (const t of g.topics) {
          if (t.name !== topic) continue;
          for (const p of t.partitions) out.set(p.partitionIndex, p.committedOffset);
        }
      }
      return out;
    });
  }

  commitOffsets(group: string, topic: string, offsets: ReadonlyMap<number, bigint>): Promise<void> {
    return guard(() =>
      this.admin.alterConsumerGroupOffsets({
        groupId: group,
        topics: [{ name: topic, partitionOffsets: [...offsets].map(([partition, offset]) => ({ partition, offset })) }],
      }),
    );
  }

  close(): Promise<void> {
    return guard(() => this.admin.close());
  }
}

// ---------------------------------------------------------------------------------------------
// Producer

class PlatformaticProducer implements KafkaProducerClient {
  private readonly producer: Producer;
  constructor(conn: ConnectionSettings, p: ProducerSettings) {
    const o = baseOptions(conn);
    this.producer = new Producer({
      ...o,
      // an idempotent producer with retries <= 1 would retry forever
      retries: Math.max(2, conn.retries),
      timeout: p.produceTimeoutMs,
      idempotent: true,
      acks: ProduceAcks.ALL,
      compression: p.compression,
    });
  }

  send(records: readonly ProduceRecord[]): Promise<Map<string, bigint>> {
    return guard(async () => {
      const messages = records.map((r) => {
        const m: { topic: string; partition: number; value: Buffer; headers?: Map<Buffer, Buffer> } = {
          topic: r.topic,
          partition: r.partition,
          value: r.value,
        };
        if (r.headers !== undefined && r.headers.length > 0) m.headers = new Map(r.headers);
        return m;
      });
      const result = await this.producer.send({ messages });
      const out = new Map<string, bigint>();
      for (const { topic, partition, offset } of result.offsets ?? []) out.set(`${topic}:${partition}`, offset);
      return out;
    });
  }

  close(force = false): Promise<void> {
    return guard(() => (this.producer.close as (f?: boolean) => Promise<void>).call(this.producer, force));
  }
}

// ---------------------------------------------------------------------------------------------
// Fetching

type FetchArgs = [number, number, number, number, number, number, FetchTopic[], never[], string];
interface FetchTopic {
  topicId: string;
  partitions: { partition: number; currentLeaderEpoch: number; fetchOffset: bigint; lastFetchedEpoch: number; partitionMaxBytes: number }[];
}
interface FetchResp {
  responses: {
    partitions: {
      partitionIndex: number;
      errorCode: number;
      highWatermark: bigint;
      lastStableOffset: bigint;
      logStartOffset: bigint;
      abortedTransactions: { producerId: bigint; firstOffset: bigint }[];
      records?: RecordsBatch[];
    }[];
  }[];
}

function convertBatch(b: RecordsBatch): RawBatch {
  return {
    firstOffset: b.firstOffset,
    lastOffsetDelta: b.lastOffsetDelta,
    firstTimestamp: b.firstTimestamp,
    producerId: b.producerId,
    transactional: (b.attributes & IS_TRANSACTIONAL) !== 0,
    control: (b.attributes & IS_CONTROL) !== 0,
    records: b.records.map((r) => ({ offsetDelta: r.offsetDelta, timestampDelta: r.timestampDelta, value: r.value, headers: r.headers })),
  };
}

class PlatformaticFetcher implements KafkaFetchClient {
  private readonly admin: Admin;
  private readonly pool: ConnectionPool;
  private closed = false;

  constructor(conn: ConnectionSettings) {
    const o = baseOptions(conn);
    this.admin = new Admin(o);
    const poolOptions: Record<string, unknown> = { connectTimeout: o.connectTimeout, requestTimeout: o.requestTimeout };
    if (o.tls !== undefined) poolOptions['tls'] = o.tls;
    if (o.tlsServerName !== undefined) poolOptions['tlsServerName'] = o.tlsServerName;
    if (o.sasl !== undefined) poolOptions['sasl'] = o.sasl;
    this.pool = new ConnectionPool(conn.clientId, poolOptions);
  }

  leaders(topic: string, refresh: boolean): Promise<Map<number, number>> {
    return guard(async () => {
      const md = await this.admin.metadata({ topics: [topic], forceUpdate: refresh });
      const t = md.topics.get(topic);
      const out = new Map<number, number>();
      t?.partitions.forEach((p, i) => out.set(i, p.leader));
      return out;
    });
  }

  partitionCount(topic: string, refresh: boolean): Promise<number> {
    return guard(async () => (await this.admin.metadata({ topics: [topic], forceUpdate: refresh })).topics.get(topic)?.partitionsCount ?? 0);
  }

  fetch(leader: number, topic: string, partitions: readonly { partition: number; offset: bigint }[], p: FetchParams): Promise<FetchedPartition[]> {
    return guard(async () => {
      const md = await this.admin.metadata({ topics: [topic] });
      const broker = md.brokers.get(leader);
      const t = md.topics.get(topic);
      if (broker === undefined || t === undefined) {
        this.admin.clearMetadata();
        throw new KafkaClientError(`No broker ${leader} for topic ${topic}`, 'protocol', ['NOT_LEADER_OR_FOLLOWER'], true);
      }
      const api = await getApi<FetchArgs, FetchResp>(this.admin, 'Fetch');
      const connection = await this.pool.get(broker);
      const req: FetchTopic[] = [
        {
          topicId: api.version >= 13 ? t.id : topic,
          partitions: partitions.map((x) => ({
            partition: x.partition,
            currentLeaderEpoch: -1,
            fetchOffset: x.offset,
            lastFetchedEpoch: -1,
            partitionMaxBytes: p.partitionMaxBytes,
          })),
        },
      ];
      let resp: FetchResp;
      try {
        resp = await api.async(connection, p.maxWaitMs, p.minBytes, p.maxBytes, isolationLevel(p.isolation), 0, -1, req, [], '');
      } catch (err) {
        resp = responseOf(err);
      }
      const out: FetchedPartition[] = [];
      for (const topicResp of resp.responses) {
        for (const part of topicResp.partitions) {
          out.push({
            partition: part.partitionIndex,
            error: part.errorCode === 0 ? undefined : errorName(part.errorCode),
            highWatermark: part.highWatermark,
            lastStableOffset: part.lastStableOffset,
            logStartOffset: part.logStartOffset,
            abortedTransactions: part.abortedTransactions ?? [],
            batches: (part.records ?? []).map(convertBatch),
          });
        }
      }
      return out;
    });
  }

  listOffsets(topic: string, partitions: readonly number[], which: 'earliest' | 'latest', isolation: Isolation): Promise<Map<number, bigint>> {
    return guard(async () => {
      const timestamp = which === 'earliest' ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST;
      let r: Awaited<ReturnType<Admin['listOffsets']>>;
      try {
        r = await this.admin.listOffsets({
          topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }],
          isolationLevel: isolationLevel(isolation) as 0 | 1,
        });
      } catch (err) {
        // leaders or their epochs moved (e.g. FENCED_LEADER_EPOCH after a broker restart): forget the
        // cached metadata so that a retry learns the current ones
        this.admin.clearMetadata();
        throw err;
      }
      const out = new Map<number, bigint>();
      for (const t of r) for (const p of t.partitions) out.set(p.partitionIndex, p.offset);
      return out;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.pool.close(), this.admin.close()]);
  }
}

// ---------------------------------------------------------------------------------------------
// Group membership

class PlatformaticGroupMember implements KafkaGroupClient {
  private readonly consumer: Consumer;
  constructor(conn: ConnectionSettings, group: string, c: ConsumerSettings) {
    const o: ConsumerOptions<Buffer, Buffer, Buffer, Buffer> = {
      ...baseOptions(conn),
      groupId: group,
      autocommit: false,
      sessionTimeout: c.sessionTimeoutMs,
      heartbeatInterval: c.heartbeatIntervalMs,
      rebalanceTimeout: c.rebalanceTimeoutMs,
      // v0 subscriptions: parseable by librdkafka/Java group leaders (octopus consumers)
      protocols: [{ name: 'roundrobin', version: 0 }],
      isolationLevel: c.isolation === 'read_committed' ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED,
    };
    if (c.groupInstanceId !== undefined) o.groupInstanceId = c.groupInstanceId;
    this.consumer = new Consumer(o);
    // automatic re-joins that fail are emitted as 'error': an unhandled one would kill the process
    this.consumer.on('error', (err: unknown) => log.warn(`Kafka consumer group ${group}: ${toClientError(err).message}`));
  }

  join(topic: string, onAssign: (partitions: number[]) => void): Promise<void> {
    return guard(async () => {
      this.consumer.on('consumer:group:join', (payload) => {
        const parts: number[] = [];
        for (const a of payload.assignments ?? []) if (a.topic === topic) parts.push(...a.partitions);
        onAssign(parts.sort((x, y) => x - y));
      });
      this.consumer.topics.trackAll(topic);
      await this.consumer.joinGroup({});
    });
  }

  commit(topic: string, offsets: ReadonlyMap<number, bigint>): Promise<void> {
    return guard(() =>
      this.consumer.commit({ offsets: [...offsets].map(([partition, offset]) => ({ topic, partition, offset, leaderEpoch: -1 })) }),
    );
  }

  committed(topic: string, partitions: readonly number[]): Promise<Map<number, bigint>> {
    return guard(async () => {
      const r = await this.consumer.listCommittedOffsets({ topics: [{ topic, partitions: [...partitions] }] });
      const out = new Map<number, bigint>();
      const list = r.get(topic) ?? [];
      for (const p of partitions) {
        const v = list[p];
        out.set(p, v === undefined ? -1n : v);
      }
      return out;
    });
  }

  /** Leaves the group (bounded: a LeaveGroup queued behind a pending JoinGroup may wait for a rebalance). */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), 10_000);
    });
    const leave = this.consumer.close().then(
      () => 'closed' as const,
      () => (this.consumer.close as (f?: boolean) => Promise<void>).call(this.consumer, true).then(
        () => 'closed' as const,
        () => 'closed' as const,
      ),
    );
    try {
      if ((await Promise.race([leave, timeout])) === 'timeout') {
        log.warn(`Kafka consumer group ${this.consumer.groupId}: leaving the group timed out; closing the connections`);
        await this.consumer.connections.close().catch(() => undefined);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------------------------

export const platformaticClients: KafkaClientFactory = {
  compressionAvailable(c: Compression): boolean {
    if (c === 'none') return true;
    return (compressionsAlgorithms as unknown as Record<string, { available?: boolean }>)[c]?.available !== false;
  },
  admin: (conn) => new PlatformaticAdmin(conn),
  producer: (conn, p) => new PlatformaticProducer(conn, p),
  fetcher: (conn) => new PlatformaticFetcher(conn),
  groupMember: (conn, group, c) => new PlatformaticGroupMember(conn, group, c),
};
