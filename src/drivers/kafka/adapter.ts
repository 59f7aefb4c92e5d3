/**
 * The client adapter: the ONLY module importing @platformatic/kafka (1.35, pinned). It implements
 * the client-neutral interfaces of `client.ts` and turns the library's error trees into
 * {@link KafkaClientError}s. Version-specific workarounds (docs/notes/platformatic-kafka.md) live
 * here: raw CreateTopics (one request, no client-side de-duplication), raw Metadata (no retries
 * on unknown topics), raw Fetch (sessionless long polls on a pool of our own, no client-side
 * transaction filter, record batches decoded by record-batch.ts), our own idempotent producer
 * (record batches encoded by record-batch.ts, Produce v9 on a pool of our own), standalone
 * commits through the admin's OffsetCommit.
 */
import {
  Admin,
  ConnectionPool,
  Consumer,
  FetchIsolationLevels,
  ListOffsetTimestamps,
  MultipleErrors,
  ProduceAcks,
  Writer,
  createAPI,
  crc32c,
  produceV9,
  TimeoutError,
  compressionsAlgorithms,
  kGetApi,
  kGetBootstrapConnection,
  protocolErrors,
  protocolErrorsCodesById,
  type Base,
  type BaseOptions,
  type Connection,
  type ConsumerOptions,
  ResponseError,
  compressionsAlgorithmsByBitmask,
  fetchV12,
  fetchV13,
  fetchV14,
  fetchV15,
  fetchV16,
  fetchV17,
  type Reader,
  type RequestCreator,
} from '@platformatic/kafka';
import { subscribe } from 'node:diagnostics_channel';
import { log } from '../../api/logging.js';
import type {
  FetchParams,
  FetchedPartition,
  KafkaAdminClient,
  KafkaClientFactory,
  KafkaFetchClient,
  KafkaGroupClient,
  KafkaProducerClient,
  ProduceRun,
  RawBatch,
  TopicCreation,
  TopicLeaders,
  TopicSpec,
} from './client.js';
import { KafkaClientError, type KafkaErrorKind } from './client-errors.js';
import { decodeRecordBatches, encodeRuns, nextSequence, type RecordRun } from './record-batch.js';
import { SequenceGuard } from './sequence-guard.js';
import type { Compression, ConnectionSettings, ConsumerSettings, Isolation, ProducerSettings } from './options.js';

// ---------------------------------------------------------------------------------------------
// Stray connection errors

/**
 * The library listens for a connection's 'error' events only until the first one (its pool's
 * `once('error')`): a second error on the same connection — e.g. the reset that follows a SASL
 * failure when the broker drops the connection instead of closing it, or a reset while the
 * connection authenticates (the socket's error, then the failed SASL request's) — is an 'error' event
 * without a listener, i.e. an uncaught exception that ends the process. Every connection gets a
 * permanent listener as it starts connecting (the library's diagnostics channel hands it over);
 * the failures themselves still reach the callers through the library's callbacks.
 */
const guarded = new WeakSet<object>();
subscribe('tracing:plt:kafka:connections:connects:start', (message) => {
  const connection = (message as { connection?: { on?: (event: 'error', listener: (err: unknown) => void) => unknown } }).connection;
  if (connection?.on === undefined || guarded.has(connection)) return;
  guarded.add(connection);
  connection.on('error', (err: unknown) => log.debug(`Kafka connection error (reported to the request that met it): ${err instanceof Error ? err.message : String(err)}`));
});

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

/** Options of a connection pool of our own, with the client's security settings. */
function poolOptions(o: BaseOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { connectTimeout: o.connectTimeout, requestTimeout: o.requestTimeout };
  if (o.tls !== undefined) out['tls'] = o.tls;
  if (o.tlsServerName !== undefined) out['tlsServerName'] = o.tlsServerName;
  if (o.sasl !== undefined) out['sasl'] = o.sasl;
  return out;
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

type ProduceResponse = produceV9.ProduceResponse;

/** The record batches of one Produce request: per topic, per partition, one encoded batch. */
type ProduceTopicData = { name: string; partitions: { index: number; batch: Buffer }[] }[];

/**
 * Produce v9 (flexible) with record batches encoded by us (record-batch.ts); the response is
 * parsed by the library. v9 is served by every broker since Kafka 2.4 and by Kafka 4.
 */
const produceApi = createAPI<[number, number, ProduceTopicData], ProduceResponse>(
  0,
  9,
  (acks: number, timeoutMs: number, topics: ProduceTopicData) =>
    Writer.create()
      .appendString(null) // transactional_id
      .appendInt16(acks)
      .appendInt32(timeoutMs)
      .appendArray(topics, (w, t) => {
        w.appendString(t.name).appendArray(t.partitions, (w, part) => {
          w.appendInt32(part.index).appendUnsignedVarInt(part.batch.length + 1).append(part.batch);
        });
      })
      .appendTaggedFields(),
  produceV9.parseResponse,
);

/**
 * The library's CRC-32C without its copy: given a Buffer it checksums `new Uint8Array(buffer)` (a
 * copy of the whole batch), given a DynamicBuffer of one buffer it uses that buffer as it is.
 */
function crc32cInPlace(bytes: Uint8Array): number {
  return crc32c(Writer.create().append(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)).dynamicBuffer);
}

/** One partition's encoded record batch. */
interface PartitionBatch {
  key: string;
  topic: string;
  partition: number;
  batch: Buffer;
  count: number;
  /** Its place among the partition's batches (SequenceGuard). */
  ordinal: number;
}

/** Why one partition's batch was not appended. */
interface BatchFailure {
  batch: PartitionBatch;
  err: unknown;
  retriable: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The idempotent producer (acks=all): its own producer id and per-partition sequences, record
 * batches encoded in one pass (the library's Producer spends ~2.5 µs per record building them),
 * one Produce request per leader, sent on a connection pool of its own. Retriable failures
 * (leader moves, coordinator loading, lost connections, a restarting broker) are retried, like
 * librdkafka, until `message.timeout.ms` or `retries`, with the SAME encoded batches and
 * sequences: the broker drops a batch it already appended and answers with its offset. On a
 * final failure the KafkaWriter discards this client: the next one has a fresh producer id.
 */
class PlatformaticProducer implements KafkaProducerClient {
  private readonly admin: Admin;
  private readonly pool: ConnectionPool;
  private producer: Promise<{ id: bigint; epoch: number }> | undefined;
  /** Next base sequence per `topic:partition`. */
  private readonly sequences = new Map<string, number>();
  /** Each topic's id at its first send: a topic deleted and created again under the name has another, and is refused. */
  private readonly topicIds = new Map<string, string>();
  private readonly order = new SequenceGuard();
  private readonly compression: { bitmask: number; compress: (records: Buffer) => Buffer } | undefined;
  private readonly retryDelayMs: number;
  private closed = false;
  private dispatchTail: Promise<unknown> = Promise.resolve();

  constructor(
    conn: ConnectionSettings,
    private readonly p: ProducerSettings,
  ) {
    const o = baseOptions(conn);
    this.admin = new Admin(o);
    this.pool = new ConnectionPool(conn.clientId, poolOptions(o));
    this.retryDelayMs = conn.retryDelayMs;
    if (p.compression !== 'none') {
      const algo = (compressionsAlgorithms as unknown as Record<string, { bitmask: number; compressSync: (b: Buffer) => Buffer }>)[p.compression];
      if (algo === undefined) throw new KafkaClientError(`Unsupported compression ${p.compression}`, 'unsupported', [], false);
      this.compression = { bitmask: algo.bitmask, compress: (b) => algo.compressSync(b) };
    }
  }

  /** retry.backoff.ms doubling per attempt, at most 1 s (librdkafka's retry.backoff.max.ms). */
  private backoff(attempt: number): Promise<void> {
    return sleep(Math.min(this.retryDelayMs * 2 ** attempt, 1000));
  }

  private async initProducerId(): Promise<{ id: bigint; epoch: number }> {
    const api = await getApi<[string | null, number, bigint, number], { producerId: bigint; producerEpoch: number }>(this.admin, 'InitProducerId');
    const deadline = performance.now() + this.p.deliveryTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await api.async(await bootstrapConnection(this.admin), null, this.p.produceTimeoutMs, -1n, -1);
        return { id: r.producerId, epoch: r.producerEpoch };
      } catch (err) {
        // e.g. COORDINATOR_LOAD_IN_PROGRESS on a broker that just started
        if (attempt >= this.p.maxRetries || this.closed || performance.now() >= deadline || !toClientError(err).retriable) throw err;
        await this.backoff(attempt);
      }
    }
  }

  private producerId(): Promise<{ id: bigint; epoch: number }> {
    const pending = (this.producer ??= this.initProducerId());
    pending.catch(() => {
      if (this.producer === pending) this.producer = undefined;
    });
    return pending;
  }

  /**
   * Runs `start` once the previous dispatches have issued their requests, so that requests reach
   * each connection (where the broker handles them one after the other) in call order.
   */
  private ordered<T>(start: () => Promise<T>): Promise<T> {
    const run = this.dispatchTail.then(start);
    this.dispatchTail = run.catch(() => undefined);
    return run;
  }

  send(runs: readonly ProduceRun[]): Promise<Map<string, bigint>> {
    return guard(async () => {
      const out = new Map<string, bigint>();
      // sequences are assigned in call order, when the batches are encoded: several sends may be
      // in flight (max.in.flight), each continuing the sequences of the one before
      const first = await this.ordered(async () => {
        const pid = await this.producerId();
        const lists = new Map<string, { topic: string; partition: number; runs: RecordRun[]; count: number }>();
        for (const r of runs) {
          if (r.records.count === 0) continue;
          const key = `${r.topic}:${r.partition}`;
          let list = lists.get(key);
          if (list === undefined) lists.set(key, (list = { topic: r.topic, partition: r.partition, runs: [], count: 0 }));
          list.runs.push(r.records);
          list.count += r.records.count;
        }
        const timestamp = BigInt(Date.now());
        const batches: PartitionBatch[] = [];
        for (const [key, list] of lists) {
          const sequence = this.sequences.get(key) ?? 0;
          const batch = encodeRuns(list.runs, { producerId: pid.id, producerEpoch: pid.epoch, baseSequence: sequence, timestamp, crc32c: crc32cInPlace, compression: this.compression });
          this.sequences.set(key, nextSequence(sequence, list.count));
          batches.push({ key, topic: list.topic, partition: list.partition, batch, count: list.count, ordinal: this.order.nextOrdinal(key) });
        }
        return this.dispatch(batches, out, false);
      });
      let failures = await first.done;
      const deadline = performance.now() + this.p.deliveryTimeoutMs;
      for (let attempt = 0; failures.length > 0; attempt++) {
        // a batch behind a failed one of its partition is refused as out of order: retriable a few
        // times, while the one before it is retried
        const fatal = failures.find((f) => !f.retriable && !(attempt < 5 && toClientError(f.err).has('OUT_OF_ORDER_SEQUENCE_NUMBER')));
        const giveUp = fatal !== undefined || attempt >= this.p.maxRetries || this.closed || performance.now() >= deadline;
        if (giveUp) {
          const err = (fatal ?? (failures[0] as BatchFailure)).err;
          for (const f of failures) this.order.giveUp(f.batch.key, err);
          throw err;
        }
        if (attempt === 0 || attempt % 10 === 0) log.debug(`Kafka produce: retrying after ${toClientError((failures[0] as BatchFailure).err).message}`);
        const retry = failures.map((f) => f.batch);
        // the same batches (same sequences): the broker drops what it already appended. The wait is
        // inside the ordered chain, so later sends do not overtake the retry.
        const again = await this.ordered(async () => {
          await this.backoff(attempt);
          this.admin.clearMetadata(); // leaders may have moved
          return this.dispatch(retry, out, true);
        });
        failures = await again.done;
      }
      return out;
    });
  }

  /**
   * Issues one Produce request per leader; resolves once they are written, with `done`: the
   * batches that were not appended, once every response is in.
   */
  private async dispatch(batches: PartitionBatch[], out: Map<string, bigint>, refresh: boolean): Promise<{ done: Promise<BatchFailure[]> }> {
    const failures: BatchFailure[] = [];
    const fail = (batch: PartitionBatch, err: unknown, retriable: boolean): void => {
      this.order.failed(batch.key, batch.ordinal);
      failures.push({ batch, err, retriable });
    };
    await this.order.ready(batches.map((b) => b.key));
    let md: Awaited<ReturnType<Admin['metadata']>>;
    try {
      md = await this.admin.metadata({ topics: [...new Set(batches.map((b) => b.topic))], forceUpdate: refresh });
    } catch (err) {
      // e.g. the broker is restarting: every batch waits for the next attempt
      const e = toClientError(err);
      if (e.kind !== 'network' && e.kind !== 'timeout' && !e.retriable) throw err;
      for (const b of batches) fail(b, err, true);
      return { done: Promise.resolve(failures) };
    }
    const byLeader = new Map<number, PartitionBatch[]>();
    for (const b of batches) {
      const id = md.topics.get(b.topic)?.id;
      if (id !== undefined) {
        const known = this.topicIds.get(b.topic);
        if (known === undefined) this.topicIds.set(b.topic, id);
        else if (id !== known) {
          // the records were meant for the topic that was deleted, not for a new one of the same name
          fail(b, new KafkaClientError(`Topic ${b.topic} was deleted (a topic of the same name was created since)`, 'protocol', ['UNKNOWN_TOPIC_ID']), false);
          continue;
        }
      }
      const admitted = this.order.admit(b.key, b.ordinal);
      if (!admitted.send) {
        if (admitted.dead !== undefined) failures.push({ batch: b, err: admitted.dead, retriable: false });
        else failures.push({ batch: b, err: new KafkaClientError(`Produce to ${b.key} waits for the retry of an earlier batch`, 'protocol', [], true), retriable: true });
        continue;
      }
      const leader = md.topics.get(b.topic)?.partitions[b.partition]?.leader;
      if (leader === undefined || leader < 0 || !md.brokers.has(leader)) {
        fail(b, new KafkaClientError(`No leader for ${b.key}`, 'protocol', ['LEADER_NOT_AVAILABLE'], true), true);
        continue;
      }
      let list = byLeader.get(leader);
      if (list === undefined) byLeader.set(leader, (list = []));
      list.push(b);
    }
    const responses: Promise<void>[] = [];
    for (const [leader, list] of byLeader) {
      const topics: ProduceTopicData = [];
      for (const b of list) {
        let t = topics.find((x) => x.name === b.topic);
        if (t === undefined) topics.push((t = { name: b.topic, partitions: [] }));
        t.partitions.push({ index: b.partition, batch: b.batch });
      }
      const failAll = (err: unknown): void => {
        const retriable = toClientError(err).retriable;
        for (const b of list) fail(b, err, retriable);
      };
      let connection: Connection;
      try {
        connection = await this.pool.get(md.brokers.get(leader) as Parameters<ConnectionPool['get']>[0]);
      } catch (err) {
        failAll(err);
        continue;
      }
      // written now; the response is awaited below, with the other requests in flight
      for (const b of list) this.order.sent(b.key);
      const request = produceApi.async(connection, ProduceAcks.ALL, this.p.produceTimeoutMs, topics);
      responses.push(
        request
          .catch((err: unknown) => responseOf<ProduceResponse>(err)) // per-partition errors: handled below; anything else rethrown
          .then(
            (resp) => {
              const byKey = new Map(list.map((b) => [b.key, b]));
              for (const t of resp.responses) {
                for (const r of t.partitionResponses) {
                  const b = byKey.get(`${t.name}:${r.index}`);
                  if (b === undefined) continue;
                  byKey.delete(b.key);
                  if (r.errorCode === 0) {
                    this.order.appended(b.key);
                    out.set(b.key, r.baseOffset);
                  } else {
                    const name = errorName(r.errorCode);
                    const retriable = (protocolErrors as Record<string, { canRetry?: boolean }>)[name]?.canRetry === true;
                    const err = new KafkaClientError(`Produce to ${b.key} failed: ${name}${r.errorMessage ? `: ${r.errorMessage}` : ''}`, 'protocol', [name], retriable);
                    fail(b, err, retriable);
                  }
                }
              }
              for (const b of byKey.values()) fail(b, new KafkaClientError(`No produce response for ${b.key}`, 'protocol', [], true), true);
            },
            failAll,
          ),
      );
    }
    return { done: Promise.all(responses).then(() => failures) };
  }

  close(): Promise<void> {
    this.closed = true;
    return guard(async () => {
      await Promise.allSettled([this.pool.close(), this.admin.close()]);
    });
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
      batches: RawBatch[];
    }[];
  }[];
}

const FETCH_MODULES: Record<number, { createRequest: RequestCreator }> = {
  12: fetchV12,
  13: fetchV13,
  14: fetchV14,
  15: fetchV15,
  16: fetchV16,
  17: fetchV17,
};

function decompressRecords(bitmask: number, bytes: Buffer): Buffer {
  const algo = (compressionsAlgorithmsByBitmask as unknown as Record<number, { decompressSync: (b: Buffer) => Buffer } | undefined>)[bitmask];
  if (algo === undefined) throw new KafkaClientError(`Unsupported compression (attributes ${bitmask})`, 'unsupported', [], false);
  return algo.decompressSync(bytes);
}

/**
 * Fetch v12–v17 responses, parsed like the library's parser except for the records: they are
 * decoded by record-batch.ts straight into RawBatches (views of the response, no per-field
 * buffers), about 3× cheaper than the library's Reader-based decoding.
 */
function parseFetchResponse(_correlationId: number, apiKey: number, apiVersion: number, reader: Reader): FetchResp {
  const errors: [string, [number, null]][] = [];
  reader.readInt32(); // throttle_time_ms
  const errorCode = reader.readInt16();
  if (errorCode !== 0) errors.push(['', [errorCode, null]]);
  reader.readInt32(); // session_id
  const response: FetchResp = {
    responses: reader.readArray((r, i) => {
      if (apiVersion >= 13) r.readUUID();
      else r.readString();
      return {
        partitions: r.readArray((r, j) => {
          const partitionIndex = r.readInt32();
          const errorCode = r.readInt16();
          const highWatermark = r.readInt64();
          const lastStableOffset = r.readInt64();
          const logStartOffset = r.readInt64();
          const abortedTransactions = r.readArray((r) => ({ producerId: r.readInt64(), firstOffset: r.readInt64() })) ?? [];
          r.readInt32(); // preferred_read_replica
          if (errorCode !== 0) errors.push([`/responses/${i}/partitions/${j}`, [errorCode, null]]);
          // COMPACT_RECORDS: length + 1, then the bytes
          const size = r.readUnsignedVarInt() - 1;
          let batches: RawBatch[] = [];
          if (size > 0) {
            batches = decodeRecordBatches((r.buffer.subarray(r.position, r.position + size) as unknown as { buffer: Buffer }).buffer, decompressRecords);
            r.skip(size);
          }
          return { partitionIndex, errorCode, highWatermark, lastStableOffset, logStartOffset, abortedTransactions, batches };
        }),
      };
    }),
  };
  if (errors.length > 0) throw new ResponseError(apiKey, apiVersion, Object.fromEntries(errors), response);
  return response;
}

const fetchApis = new Map<number, RawApi<FetchArgs, FetchResp>>();

/** The Fetch API of `version` with our response parser. */
function fetchApi(version: number): RawApi<FetchArgs, FetchResp> {
  let api = fetchApis.get(version);
  if (api === undefined) {
    const m = FETCH_MODULES[version];
    if (m === undefined) throw new KafkaClientError(`Fetch v${version} is not supported`, 'unsupported', [], false);
    api = createAPI<FetchArgs, FetchResp>(1, version, m.createRequest, parseFetchResponse) as unknown as RawApi<FetchArgs, FetchResp>;
    fetchApis.set(version, api);
  }
  return api;
}

class PlatformaticFetcher implements KafkaFetchClient {
  private readonly admin: Admin;
  private readonly pool: ConnectionPool;
  private closed = false;

  constructor(private readonly conn: ConnectionSettings) {
    const o = baseOptions(conn);
    this.admin = new Admin(o);
    this.pool = new ConnectionPool(conn.clientId, poolOptions(o));
  }

  leaders(topic: string, refresh: boolean): Promise<TopicLeaders> {
    return guard(async () => {
      const md = await this.admin.metadata({ topics: [topic], forceUpdate: refresh });
      const t = md.topics.get(topic);
      if (t === undefined) throw new KafkaClientError(`Unknown topic ${topic}`, 'user', ['UNKNOWN_TOPIC_OR_PARTITION']);
      const leaders = new Map<number, number>();
      t.partitions.forEach((p, i) => leaders.set(i, p.leader));
      return { id: t.id, leaders };
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
      // cached metadata refreshed since the consumer looked: never fetch a re-created topic's records at these offsets
      if (p.topicId !== undefined && t.id !== p.topicId) throw new KafkaClientError(`Topic ${topic} has another id`, 'protocol', ['UNKNOWN_TOPIC_ID'], true);
      const api = fetchApi((await getApi<FetchArgs, unknown>(this.admin, 'Fetch')).version);
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
            batches: part.batches,
          });
        }
      }
      return out;
    });
  }

  /**
   * Waits (retry.backoff.ms doubling, at most 1 s, within request.timeout.ms) until every partition has
   * a leader that the metadata lists, else throws a retriable LEADER_NOT_AVAILABLE. The library's
   * listOffsets looks the leader up without that check: for a partition whose leader is -1 (an
   * election in progress, e.g. just after a broker came back) it fails with a TypeError (`reading
   * 'host'` of an undefined broker), which a CI run caught.
   */
  private async awaitLeaders(topic: string, partitions: readonly number[]): Promise<void> {
    const deadline = performance.now() + this.conn.requestTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const md = await this.admin.metadata({ topics: [topic], forceUpdate: attempt > 0 });
      const t = md.topics.get(topic);
      const missing = partitions.filter((p) => {
        const leader = t?.partitions[p]?.leader;
        return leader === undefined || leader < 0 || !md.brokers.has(leader);
      });
      if (missing.length === 0) return;
      if (this.closed || performance.now() >= deadline) {
        throw new KafkaClientError(`No leader for ${topic} partition(s) ${missing.join(', ')}`, 'protocol', ['LEADER_NOT_AVAILABLE'], true);
      }
      await sleep(Math.min(this.conn.retryDelayMs * 2 ** attempt, 1000));
    }
  }

  listOffsets(topic: string, partitions: readonly number[], which: 'earliest' | 'latest', isolation: Isolation): Promise<Map<number, bigint>> {
    return guard(async () => {
      const timestamp = which === 'earliest' ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST;
      await this.awaitLeaders(topic, partitions);
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

  rejoin(): Promise<void> {
    return guard(async () => {
      await this.consumer.joinGroup({});
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
