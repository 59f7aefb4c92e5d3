/**
 * The `kafka` driver (alias `octopus`), interoperable with the C++ octopus driver
 * (kafka-octopus.md): topics, their info topics, producers and consumers over a Kafka cluster.
 * All client-library calls go through the adapter interfaces of `client.ts`.
 */
import type {
  ConsumerSource,
  DriverImpl,
  SourceOptions,
  TopicComponentsConfig,
  TopicImpl,
  TopicWriter,
  WriterOptions,
} from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes } from '../../api/errors.js';
import { isJsonObject, type Json, type JsonObject } from '../../api/json.js';
import { log } from '../../api/logging.js';
import type { Metadata, PartitionInfo } from '../../api/metadata.js';
import type { KafkaAdminClient, KafkaClientFactory, KafkaFetchClient, KafkaProducerClient, TopicSpec } from './client.js';
import { isUnknownTopic, KafkaClientError, kafkaError, retryRetriable } from './client-errors.js';
import {
  checkKafkaTopicName,
  defaultComponents,
  infoRecords,
  infoTopicName,
  kafkaTopicName,
  listedName,
  parseInfoRecords,
  readInfoValues,
  warnInfoTopic,
  type Naming,
} from './info-topic.js';
import { mskIamTokenProvider } from './msk-iam.js';
import { listRun } from './record-batch.js';
import {
  connectionSettings,
  consumerSettings,
  mergeProps,
  parseDriverOptions,
  producerSettings,
  type ConnectionSettings,
  type KafkaDriverOptions,
  type KafkaProps,
  type OAuthOverride,
} from './options.js';
import { KafkaSource, type SourceMode } from './source.js';
import { KafkaWriter } from './writer.js';

const DEFAULT_REPLICATION_FACTOR = 3;
/** Broker-side timeout of CreateTopics. */
const CREATE_TIMEOUT_MS = 30_000;

function configError(message: string): DiasporaError {
  return new DiasporaError(message, { code: ErrorCodes.CONFIG });
}

function notFound(name: string): DiasporaError {
  return new DiasporaError(`Topic "${name}" not found`, { code: ErrorCodes.TOPIC_NOT_FOUND });
}

/** A positive integer topic option with the octopus texts. */
function countOption(options: JsonObject, key: string, def: number): { value: number; given: boolean } {
  const v = options[key];
  if (v === undefined) return { value: def, given: false };
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number') throw configError(`"${key}" option should be a number`);
  if (!Number.isInteger(n) || n <= 0 || n > 1_000_000) throw configError(`Invalid value for "${key}" option`);
  return { value: n, given: true };
}

function isDefault(c: JsonObject): boolean {
  return c['type'] === undefined || c['type'] === 'default';
}

export class KafkaDriver implements DriverImpl {
  private infoProducer: KafkaProducerClient | undefined;
  private infoChain: Promise<unknown> = Promise.resolve();
  private closed = false;
  readonly naming: Naming;

  constructor(
    readonly o: KafkaDriverOptions,
    readonly factory: KafkaClientFactory,
    readonly conn: ConnectionSettings,
    readonly admin: KafkaAdminClient,
    /** Reads info topics (its own connections). */
    readonly fetcher: KafkaFetchClient,
    readonly clusterId: string,
    readonly brokers: number,
    private readonly oauth: OAuthOverride | undefined,
  ) {
    this.naming = { namespace: o.namespace, infoTopicPrefix: o.infoTopicPrefix };
  }

  /** Connection settings for a client with these (merged) properties. */
  connectionFor(props: KafkaProps): ConnectionSettings {
    return connectionSettings(props, this.oauth);
  }

  // -------------------------------------------------------------------------------------------

  async createTopic(name: string, options: JsonObject, components: TopicComponentsConfig): Promise<void> {
    if (!isJsonObject(options)) throw configError('Invalid config passed to OctopusDriver::createTopic: should be an object');
    const partitions = countOption(options, 'num_partitions', 1).value;
    const rf = countOption(options, 'replication_factor', DEFAULT_REPLICATION_FACTOR);
    const disable = options['disable_info_topic'] ?? this.o.disableInfoTopic;
    if (typeof disable !== 'boolean') throw configError('"disable_info_topic" option should be a boolean');
    if (disable) {
      if (!isDefault(components.validator)) throw configError('Cannot disable info topic: validator type is not "default"');
      if (!isDefault(components.partitionSelector)) throw configError('Cannot disable info topic: partition selector type is not "default"');
      if (!isDefault(components.serializer)) throw configError('Cannot disable info topic: serializer type is not "default"');
    }
    const config = options['config'] ?? {};
    if (!isJsonObject(config)) throw configError('"config" option should be an object');
    const configs: Record<string, string> = {};
    for (const [k, v] of Object.entries(config)) configs[k] = typeof v === 'string' ? v : String(v);

    const kname = kafkaTopicName(this.naming, name);
    const iname = infoTopicName(this.naming, name);
    checkKafkaTopicName(name, kname);
    if (!disable) checkKafkaTopicName(name, iname);

    let replication = rf.value;
    if (!rf.given && this.brokers > 0 && this.brokers < replication) {
      log.warn(`Topic ${name}: the cluster has ${this.brokers} broker(s), using replication factor ${this.brokers} instead of ${replication}`);
      replication = this.brokers;
    }
    const specs: TopicSpec[] = [{ name: kname, partitions, replicationFactor: replication, configs }];
    if (!disable) specs.push({ name: iname, partitions: 1, replicationFactor: replication, configs: { 'retention.ms': '-1', 'retention.bytes': '-1' } });

    let results;
    try {
      results = await this.admin.createTopics(specs, CREATE_TIMEOUT_MS);
    } catch (err) {
      throw kafkaError(err);
    }
    const created = results.filter((r) => r.error === undefined).map((r) => r.name);
    const failed = results.find((r) => r.error !== undefined);
    if (failed !== undefined) {
      // per-topic creation is not atomic: remove what this request created
      if (created.length > 0) await this.admin.deleteTopics(created).catch(() => undefined);
      const dataFailed = results.find((r) => r.name === kname && r.error !== undefined);
      if (dataFailed?.error === 'TOPIC_ALREADY_EXISTS') throw new DiasporaError(`Topic already exists: ${name}`, { code: ErrorCodes.TOPIC_EXISTS });
      if (dataFailed?.error === 'INVALID_TOPIC_EXCEPTION') throw new DiasporaError(`Invalid topic name: ${name}`, { code: ErrorCodes.INVALID_TOPIC_NAME });
      throw kafkaError(new Error(`${failed.error}${failed.message ? `: ${failed.message}` : ''}`), `cannot create topic ${failed.name}`);
    }
    if (disable) return;
    try {
      await this.writeInfoRecords(iname, infoRecords(components));
    } catch (err) {
      await this.admin.deleteTopics(created).catch(() => undefined);
      throw kafkaError(err, `cannot write the info topic ${iname}`);
    }
  }

  /** Produces the info records (acks=all) through one shared producer, retrying while the new topic propagates. */
  private writeInfoRecords(topic: string, values: Buffer[]): Promise<void> {
    const run = async (): Promise<void> => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        this.infoProducer ??= this.factory.producer(this.conn, { ...producerSettings(this.o.props), maxBatchRecords: 10, deliveryTimeoutMs: 30_000 });
        try {
          await this.infoProducer.send([{ topic, partition: 0, records: listRun(values.map((value) => ({ value }))) }]);
          return;
        } catch (err) {
          const p = this.infoProducer;
          this.infoProducer = undefined;
          void p.close(true).catch(() => undefined);
          const unknown = isUnknownTopic(err) || (err instanceof KafkaClientError && (err.has('LEADER_NOT_AVAILABLE') || err.has('NOT_LEADER_OR_FOLLOWER')));
          if (!unknown || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const p = this.infoChain.then(run, run);
    this.infoChain = p.catch(() => undefined);
    return p;
  }

  async openTopic(name: string): Promise<TopicImpl | undefined> {
    const kname = kafkaTopicName(this.naming, name);
    const iname = infoTopicName(this.naming, name);
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(kname)) throw notFound(name);
    let found: Map<string, number>;
    try {
      found = await retryRetriable(() => this.admin.describeTopics(/^[a-zA-Z0-9._-]{1,249}$/.test(iname) ? [kname, iname] : [kname]));
    } catch (err) {
      throw kafkaError(err);
    }
    const n = found.get(kname);
    if (n === undefined || n === 0) throw notFound(name);
    let components: TopicComponentsConfig;
    if (!found.has(iname)) {
      warnInfoTopic(iname);
      components = defaultComponents();
    } else {
      let values: (Buffer | null)[];
      try {
        values = await retryRetriable(() => readInfoValues(this.fetcher, iname));
      } catch (err) {
        throw kafkaError(err, `cannot read the info topic ${iname}`);
      }
      if (values.length < 3) {
        warnInfoTopic(iname);
        components = defaultComponents();
      } else components = await parseInfoRecords(name, values);
    }
    return new KafkaTopic(this, name, kname, n, components);
  }

  async topicExists(name: string): Promise<boolean> {
    const kname = kafkaTopicName(this.naming, name);
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(kname)) return false;
    try {
      return (await this.admin.describeTopics([kname])).has(kname);
    } catch (err) {
      throw kafkaError(err);
    }
  }

  async listTopics(): Promise<Map<string, Json>> {
    let all: string[];
    try {
      all = await this.admin.listTopics();
    } catch (err) {
      throw kafkaError(err);
    }
    const names = new Set(all);
    const data: [string, string][] = [];
    for (const k of all) {
      const n = listedName(this.naming, k);
      if (n !== undefined) data.push([n, k]);
    }
    const out = new Map<string, Json>();
    if (data.length === 0) return out;
    let counts: Map<string, number>;
    try {
      counts = await this.admin.describeTopics(data.map(([, k]) => k));
    } catch (err) {
      throw kafkaError(err);
    }
    const entries = await mapLimit(data, 8, async ([name, kname]): Promise<[string, Json] | undefined> => {
      const n = counts.get(kname);
      if (n === undefined) return undefined; // deleted meanwhile
      const iname = infoTopicName(this.naming, name);
      let c: TopicComponentsConfig | undefined;
      if (names.has(iname)) {
        try {
          const values = await readInfoValues(this.fetcher, iname, 10_000);
          if (values.length >= 3) c = await parseInfoRecords(name, values);
        } catch {
          c = undefined;
        }
      }
      if (c === undefined) return this.o.listAllTopics ? [name, { name, num_partitions: n, info_topic: false }] : undefined;
      return [
        name,
        { name, num_partitions: n, validator: c.validator, selector: c.partitionSelector, partition_selector: c.partitionSelector, serializer: c.serializer },
      ];
    });
    for (const e of entries) if (e !== undefined) out.set(e[0], e[1]);
    return out;
  }

  async deleteTopic(name: string): Promise<void> {
    const kname = kafkaTopicName(this.naming, name);
    const iname = infoTopicName(this.naming, name);
    if (!/^[a-zA-Z0-9._-]{1,249}$/.test(kname)) throw notFound(name);
    try {
      const found = await this.admin.describeTopics(/^[a-zA-Z0-9._-]{1,249}$/.test(iname) ? [kname, iname] : [kname]);
      if (!found.has(kname)) throw notFound(name);
      await this.admin.deleteTopics(found.has(iname) ? [kname, iname] : [kname]);
      // the broker answers once the deletion is committed, but its metadata may still list the
      // topic for a moment: wait (bounded) so that topicExists/createTopic right after agree
      const deadline = Date.now() + 5000;
      while ((await this.admin.describeTopics([kname])).has(kname) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } catch (err) {
      throw kafkaError(err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.infoChain;
    const jobs: Promise<unknown>[] = [this.admin.close(), this.fetcher.close()];
    if (this.infoProducer !== undefined) jobs.push(this.infoProducer.close());
    await Promise.allSettled(jobs);
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// ---------------------------------------------------------------------------------------------

class KafkaTopic implements TopicImpl {
  readonly partitions: readonly PartitionInfo[];
  readonly sourceId: string;
  /**
   * `commit_interval_ms`: the default `ackIntervalMs` of this topic's consumers (not part of the
   * SPI yet: the generic TopicHandle has to read it).
   */
  readonly defaultAckIntervalMs: number;

  constructor(
    private readonly driver: KafkaDriver,
    readonly name: string,
    readonly kafkaName: string,
    n: number,
    readonly components: TopicComponentsConfig,
  ) {
    this.partitions = Array.from({ length: n }, (_, i) => ({ partition_id: i }));
    const cluster = driver.clusterId !== '' ? driver.clusterId : [...driver.conn.brokers].sort().join(',');
    this.sourceId = `kafka:${cluster}/${kafkaName}`;
    this.defaultAckIntervalMs = driver.o.commitIntervalMs;
  }

  async createWriter(o: WriterOptions): Promise<TopicWriter> {
    const props = mergeProps(this.driver.o.props, o.options['kafka'], 'producer');
    const settings = producerSettings(props);
    if (settings.transactionalId !== undefined) {
      throw new DiasporaError(`Kafka transactions are not supported by this driver yet (Kafka property 'transactional.id')`, { code: ErrorCodes.CONFIG });
    }
    if (!this.driver.factory.compressionAvailable(settings.compression)) throw configError(`Unsupported compression: ${settings.compression}`);
    if (o.batchSize !== 'adaptive') settings.maxBatchRecords = Math.min(settings.maxBatchRecords, o.batchSize);
    return new KafkaWriter(this.driver.factory, this.driver.connectionFor(props), settings, this.kafkaName, this.partitions.length);
  }

  async createSource(o: SourceOptions): Promise<ConsumerSource> {
    const props = mergeProps(this.driver.o.props, o.options['kafka'], 'consumer');
    const settings = consumerSettings(props);
    const conn = this.driver.connectionFor(props);
    let mode: SourceMode;
    if (o.consumerName === '') mode = 'anonymous';
    else if (o.targets.length > 0) mode = 'manual';
    else mode = 'group';
    const fetcher = this.driver.factory.fetcher(conn);
    const group = mode === 'group' ? this.driver.factory.groupMember(conn, o.consumerName, settings) : undefined;
    const source = new KafkaSource(
      o,
      { topic: this.kafkaName, fetcher, admin: this.driver.admin, group, settings, onMalformed: this.driver.o.onMalformed, partitionCheckMs: conn.metadataMaxAgeMs, topicPartitions: this.partitions.length },
      mode,
    );
    try {
      await source.start();
    } catch (err) {
      await source.close();
      throw kafkaError(err);
    }
    return source;
  }

  async close(): Promise<void> {}
}

// ---------------------------------------------------------------------------------------------

/** Creates the driver with a given client factory (unit tests pass a fake). */
export async function createKafkaDriverWith(options: Metadata, factory: KafkaClientFactory): Promise<DriverImpl> {
  const o = parseDriverOptions(options.json);
  const p = producerSettings(o.props);
  if (!factory.compressionAvailable(p.compression)) throw configError(`Unsupported compression: ${p.compression}`);
  const oauth: OAuthOverride | undefined = o.awsMskIam === undefined ? undefined : { token: mskIamTokenProvider(o.awsMskIam.region) };
  const conn = connectionSettings(o.props, oauth);
  const admin = factory.admin(conn);
  let cluster: { clusterId: string; brokers: number };
  try {
    cluster = await admin.cluster();
  } catch (err) {
    await admin.close().catch(() => undefined);
    throw kafkaError(err);
  }
  const fetcher = factory.fetcher(conn);
  return new KafkaDriver(o, factory, conn, admin, fetcher, cluster.clusterId, cluster.brokers, oauth);
}

export async function createKafkaDriver(options: Metadata): Promise<DriverImpl> {
  const { platformaticClients } = await import('./adapter.js');
  return createKafkaDriverWith(options, platformaticClients);
}
