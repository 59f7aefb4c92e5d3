/**
 * Options of the `kafka`/`octopus` driver (kafka-octopus.md §1): validation of the driver options
 * with the octopus texts, and the mapping of librdkafka-style `kafka` properties (§1.1) to the
 * client-neutral settings the adapter understands. Nothing here talks to a broker.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { DiasporaError, ErrorCodes, errorMessage } from '../../api/errors.js';
import { dumpCompact, isJsonObject, type Json, type JsonObject } from '../../api/json.js';
import { log } from '../../api/logging.js';
import { MAX_TIMER_MS } from '../../api/timers.js';

/** librdkafka-style client properties, every value as text. */
export type KafkaProps = Record<string, string>;

export interface KafkaDriverOptions {
  props: KafkaProps;
  namespace: string | undefined;
  disableInfoTopic: boolean;
  infoTopicPrefix: string;
  awsMskIam: { region: string } | undefined;
  listAllTopics: boolean;
  commitIntervalMs: number;
  onMalformed: 'skip' | 'stop';
}

function configError(message: string): DiasporaError {
  return new DiasporaError(message, { code: ErrorCodes.CONFIG });
}

/** A property value as text: strings as is, arrays joined with `,`, other JSON as compact text. */
function propText(v: Json): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : dumpCompact(x))).join(',');
  return dumpCompact(v);
}

/** Normalizes a `kafka` object (driver, producer or consumer level) into text properties. */
export function normalizeProps(o: JsonObject): KafkaProps {
  const out: KafkaProps = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = propText(v);
  return out;
}

export function parseDriverOptions(json: Json): KafkaDriverOptions {
  if (!isJsonObject(json)) throw configError("OctopusDriver configuration file doesn't have a correct format");
  const kafka = json['kafka'];
  if (!isJsonObject(kafka)) {
    throw configError('OctopusDriver configuration file doesn\'t have a correct format (expected a "kafka" object field)');
  }
  const namespace = json['namespace'];
  if (namespace !== undefined && typeof namespace !== 'string') throw configError('"namespace" option should be a string');
  const disable = json['disable_info_topic'];
  if (disable !== undefined && typeof disable !== 'boolean') throw configError('"disable_info_topic" option should be a boolean');
  const servers = kafka['bootstrap.servers'];
  if (servers === undefined || servers === null) {
    throw configError('"bootstrap.servers" not found or not a string in OctopusDriver configuration');
  }
  if (!(typeof servers === 'string' || (Array.isArray(servers) && servers.every((s) => typeof s === 'string')))) {
    throw configError('"bootstrap.servers" should be a string or an array of strings');
  }
  const octopus = json['octopus'];
  if (octopus !== undefined) throw configError('The "octopus" REST admin is not supported by this driver');
  const prefix = json['info_topic_prefix'];
  if (prefix !== undefined && typeof prefix !== 'string') throw configError('"info_topic_prefix" option should be a string');
  const iam = json['aws_msk_iam'];
  let awsMskIam: { region: string } | undefined;
  if (iam !== undefined) {
    if (!isJsonObject(iam) || typeof iam['region'] !== 'string' || iam['region'] === '') {
      throw configError('"aws_msk_iam" requires a "region" string');
    }
    awsMskIam = { region: iam['region'] };
  }
  const listAll = json['list_all_topics'];
  if (listAll !== undefined && typeof listAll !== 'boolean') throw configError('"list_all_topics" option should be a boolean');
  const interval = json['commit_interval_ms'];
  const intervalN = typeof interval === 'bigint' ? Number(interval) : interval;
  if (intervalN !== undefined && (typeof intervalN !== 'number' || !Number.isInteger(intervalN) || intervalN < 0)) {
    throw configError('"commit_interval_ms" option should be a non-negative integer');
  }
  if (typeof intervalN === 'number' && intervalN > MAX_TIMER_MS) throw configError(`"commit_interval_ms" option should be at most ${MAX_TIMER_MS} (ms)`);
  const onMalformed = json['on_malformed'];
  if (onMalformed !== undefined && onMalformed !== 'skip' && onMalformed !== 'stop') {
    throw configError('"on_malformed" option should be "skip" or "stop"');
  }
  const props = normalizeProps(kafka);
  warnProps(props, 'driver');
  // fail early on values that can never work (compression, protocol, mechanism, files)
  connectionSettings(props, undefined);
  producerSettings(props);
  consumerSettings(props);
  return {
    props,
    namespace: namespace === '' ? undefined : namespace,
    disableInfoTopic: disable ?? false,
    infoTopicPrefix: prefix ?? '__info_',
    awsMskIam,
    listAllTopics: listAll ?? false,
    commitIntervalMs: (intervalN as number | undefined) ?? 1000,
    onMalformed: onMalformed ?? 'skip',
  };
}

// ---------------------------------------------------------------------------------------------
// Known properties

const CONNECTION_PROPS = [
  'bootstrap.servers',
  'client.id',
  'security.protocol',
  'sasl.mechanisms',
  'sasl.mechanism',
  'sasl.username',
  'sasl.password',
  'ssl.ca.location',
  'ssl.ca.pem',
  'ssl.certificate.location',
  'ssl.certificate.pem',
  'ssl.key.location',
  'ssl.key.pem',
  'ssl.key.password',
  'enable.ssl.certificate.verification',
  'ssl.endpoint.identification.algorithm',
  'request.timeout.ms',
  'socket.timeout.ms',
  'socket.connection.setup.timeout.ms',
  'metadata.max.age.ms',
  'topic.metadata.refresh.interval.ms',
  'retries',
  'message.send.max.retries',
  'retry.backoff.ms',
];
const PRODUCER_PROPS = [
  'acks',
  'request.required.acks',
  'compression.type',
  'compression.codec',
  'linger.ms',
  'queue.buffering.max.ms',
  'batch.num.messages',
  'batch.size',
  'message.max.bytes',
  'message.timeout.ms',
  'delivery.timeout.ms',
  'transactional.id',
  'transaction.timeout.ms',
  'enable.idempotence',
  'max.in.flight.requests.per.connection',
  'max.in.flight',
];
const CONSUMER_PROPS = [
  'auto.offset.reset',
  'session.timeout.ms',
  'heartbeat.interval.ms',
  'max.poll.interval.ms',
  'group.instance.id',
  'isolation.level',
  'fetch.max.bytes',
  'max.partition.fetch.bytes',
  'fetch.wait.max.ms',
  'fetch.min.bytes',
  'queued.min.messages',
  'queued.max.messages.kbytes',
  'enable.auto.commit',
  'enable.auto.offset.store',
  'enable.partition.eof',
  'group.id',
];
const KNOWN = new Set([...CONNECTION_PROPS, ...PRODUCER_PROPS, ...CONSUMER_PROPS]);

/**
 * Logs the warnings of §1.1 for a set of properties: unsupported names, and the values the driver
 * overrides (idempotence, auto-commit, group id).
 */
export function warnProps(props: KafkaProps, _where: 'driver' | 'producer' | 'consumer'): void {
  for (const [name, value] of Object.entries(props)) {
    if (!KNOWN.has(name)) {
      log.warn(`Ignoring unsupported Kafka property '${name}'`);
      continue;
    }
    const v = value.trim().toLowerCase();
    if (name === 'enable.idempotence' && v !== 'true') {
      log.warn(`Ignoring Kafka property 'enable.idempotence=${value}': producers are always idempotent`);
    } else if ((name === 'enable.auto.commit' || name === 'enable.auto.offset.store') && v !== 'false') {
      log.warn(`Ignoring Kafka property '${name}=${value}': offsets are committed from acknowledgements`);
    } else if (name === 'group.id') {
      log.warn(`Ignoring Kafka property 'group.id': the consumer group is the consumer name`);
    } else if ((name === 'acks' || name === 'request.required.acks') && v !== 'all' && v !== '-1') {
      log.warn(`Ignoring Kafka property '${name}=${value}': the idempotent producer requires acks=all`);
    }
  }
}

/** Merges client-level overrides (`options.kafka` of a producer or consumer) over the driver's. */
export function mergeProps(base: KafkaProps, override: Json | undefined, where: 'producer' | 'consumer'): KafkaProps {
  if (override === undefined || override === null) return base;
  if (!isJsonObject(override)) throw configError(`"kafka" option of the ${where} should be an object`);
  const o = normalizeProps(override);
  warnProps(o, where);
  if (where === 'consumer') delete o['group.id'];
  return { ...base, ...o };
}

// ---------------------------------------------------------------------------------------------
// Value parsing

function intProp(props: KafkaProps, names: string[], def: number, min = 0): number {
  for (const n of names) {
    const v = props[n];
    if (v === undefined) continue;
    const x = Number(v.trim());
    if (v.trim() === '' || !Number.isInteger(x) || x < min) throw configError(`Invalid value for Kafka property '${n}': ${v}`);
    // durations end up in timers
    if (n.endsWith('.ms') && x > MAX_TIMER_MS) throw configError(`Invalid value for Kafka property '${n}': ${v} (at most ${MAX_TIMER_MS} ms)`);
    return x;
  }
  return def;
}

function boolProp(props: KafkaProps, name: string, def: boolean): boolean {
  const v = props[name];
  if (v === undefined) return def;
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  throw configError(`Invalid value for Kafka property '${name}': ${v}`);
}

// ---------------------------------------------------------------------------------------------
// Connection

export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512' | 'OAUTHBEARER';

export interface TlsSettings {
  ca?: Buffer[];
  cert?: Buffer;
  key?: Buffer;
  passphrase?: string;
  rejectUnauthorized: boolean;
  checkHostname: boolean;
  /** Send SNI (not for IP literals, which TLS forbids as server names). */
  sni: boolean;
}

export interface SaslSettings {
  mechanism: SaslMechanism;
  username?: string;
  password?: string;
  /** OAUTHBEARER token provider. */
  token?: () => Promise<string>;
}

export interface ConnectionSettings {
  clientId: string;
  brokers: string[];
  tls: TlsSettings | undefined;
  sasl: SaslSettings | undefined;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  retries: number;
  retryDelayMs: number;
  metadataMaxAgeMs: number;
}

/** For AWS MSK IAM: forces SASL_SSL + OAUTHBEARER with this token provider. */
export interface OAuthOverride {
  token: () => Promise<string>;
}

function readPemFile(prop: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw configError(`Cannot read Kafka property '${prop}' file ${path}: ${errorMessage(err)}`);
  }
}

function readCa(path: string): Buffer[] {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw configError(`Cannot read Kafka property 'ssl.ca.location' file ${path}: ${errorMessage(err)}`);
  }
  if (!st.isDirectory()) return [readPemFile('ssl.ca.location', path)];
  return readdirSync(path)
    .filter((f) => /\.(pem|crt|cer)$/i.test(f))
    .sort()
    .map((f) => readPemFile('ssl.ca.location', join(path, f)));
}

export function connectionSettings(props: KafkaProps, oauth: OAuthOverride | undefined): ConnectionSettings {
  const servers = props['bootstrap.servers'] ?? '';
  const brokers = servers
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => s.replace(/^[a-z_]+:\/\//i, '')); // "PLAINTEXT://h:p" as accepted by librdkafka
  if (brokers.length === 0) throw configError('"bootstrap.servers" not found or not a string in OctopusDriver configuration');
  let protocol = (props['security.protocol'] ?? 'plaintext').trim().toLowerCase();
  if (oauth !== undefined) protocol = 'sasl_ssl';
  if (!['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'].includes(protocol)) {
    throw configError(`Unsupported security.protocol: ${props['security.protocol']}`);
  }
  let tls: TlsSettings | undefined;
  if (protocol === 'ssl' || protocol === 'sasl_ssl') {
    const caLoc = props['ssl.ca.location'];
    const caPem = props['ssl.ca.pem'];
    const certLoc = props['ssl.certificate.location'];
    const certPem = props['ssl.certificate.pem'];
    const keyLoc = props['ssl.key.location'];
    const keyPem = props['ssl.key.pem'];
    const firstHost = (brokers[0] as string).replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const algo = (props['ssl.endpoint.identification.algorithm'] ?? 'https').trim().toLowerCase();
    tls = {
      rejectUnauthorized: boolProp(props, 'enable.ssl.certificate.verification', true),
      checkHostname: algo !== 'none',
      sni: isIP(firstHost) === 0,
    };
    const ca: Buffer[] = [];
    if (caLoc !== undefined && caLoc !== '' && caLoc !== 'probe') ca.push(...readCa(caLoc));
    if (caPem !== undefined && caPem !== '') ca.push(Buffer.from(caPem));
    if (ca.length > 0) tls.ca = ca;
    if (certLoc !== undefined && certLoc !== '') tls.cert = readPemFile('ssl.certificate.location', certLoc);
    else if (certPem !== undefined && certPem !== '') tls.cert = Buffer.from(certPem);
    if (keyLoc !== undefined && keyLoc !== '') tls.key = readPemFile('ssl.key.location', keyLoc);
    else if (keyPem !== undefined && keyPem !== '') tls.key = Buffer.from(keyPem);
    if (props['ssl.key.password'] !== undefined) tls.passphrase = props['ssl.key.password'];
  }
  let sasl: SaslSettings | undefined;
  if (protocol === 'sasl_plaintext' || protocol === 'sasl_ssl') {
    if (oauth !== undefined) sasl = { mechanism: 'OAUTHBEARER', token: oauth.token };
    else {
      const m = (props['sasl.mechanisms'] ?? props['sasl.mechanism'] ?? 'PLAIN').trim().toUpperCase();
      if (m !== 'PLAIN' && m !== 'SCRAM-SHA-256' && m !== 'SCRAM-SHA-512' && m !== 'OAUTHBEARER') {
        throw configError(`Unsupported SASL mechanism: ${m}`);
      }
      sasl = { mechanism: m };
      if (props['sasl.username'] !== undefined) sasl.username = props['sasl.username'];
      if (props['sasl.password'] !== undefined) sasl.password = props['sasl.password'];
    }
  }
  return {
    clientId: props['client.id'] ?? 'diaspora-stream',
    brokers,
    tls,
    sasl,
    connectTimeoutMs: intProp(props, ['socket.connection.setup.timeout.ms'], 5000, 1),
    requestTimeoutMs: intProp(props, ['request.timeout.ms', 'socket.timeout.ms'], 30000, 1),
    retries: intProp(props, ['retries', 'message.send.max.retries'], 3),
    retryDelayMs: intProp(props, ['retry.backoff.ms'], 250),
    metadataMaxAgeMs: intProp(props, ['topic.metadata.refresh.interval.ms', 'metadata.max.age.ms'], 10000, 1),
  };
}

// ---------------------------------------------------------------------------------------------
// Producer

export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

export interface ProducerSettings {
  compression: Compression;
  /** Records per produce batch (per partition per request). */
  maxBatchRecords: number;
  /** Bytes per produce batch (per partition per request), before compression. */
  maxBatchBytes: number;
  /** A send not acknowledged within this time fails (message.timeout.ms). */
  deliveryTimeoutMs: number;
  /** Broker-side produce timeout. */
  produceTimeoutMs: number;
  /**
   * Retries of a retriable produce failure (librdkafka's `retries`, default 2^31 − 1): within
   * deliveryTimeoutMs, a send is retried with the same sequences, so a broker restart causes
   * neither loss nor duplicates.
   */
  maxRetries: number;
  /** Produce requests in flight per producer (max.in.flight; idempotence allows at most 5). */
  maxInFlight: number;
  /**
   * While a request is in flight, queued records wait up to this long (linger.ms) for a batch
   * worth sending (half of maxBatchBytes or maxBatchRecords): fewer, larger requests.
   */
  lingerMs: number;
  transactionalId: string | undefined;
}

export function producerSettings(props: KafkaProps): ProducerSettings {
  const c = (props['compression.type'] ?? props['compression.codec'] ?? 'none').trim().toLowerCase();
  const compression = (c === 'inherit' ? 'none' : c) as Compression;
  if (!['none', 'gzip', 'snappy', 'lz4', 'zstd'].includes(compression)) throw configError(`Unsupported compression: ${c}`);
  const messageMax = intProp(props, ['message.max.bytes'], 1_000_000, 1000);
  const batchSize = intProp(props, ['batch.size'], messageMax, 1);
  const tid = props['transactional.id'];
  return {
    compression,
    maxBatchRecords: intProp(props, ['batch.num.messages'], 10_000, 1),
    maxBatchBytes: Math.min(messageMax, batchSize),
    deliveryTimeoutMs: intProp(props, ['message.timeout.ms', 'delivery.timeout.ms'], 300_000, 1),
    produceTimeoutMs: intProp(props, ['request.timeout.ms'], 30_000, 1),
    maxRetries: intProp(props, ['retries', 'message.send.max.retries'], 2_147_483_647),
    maxInFlight: Math.min(5, intProp(props, ['max.in.flight.requests.per.connection', 'max.in.flight'], 5, 1)),
    lingerMs: intProp(props, ['linger.ms', 'queue.buffering.max.ms'], 5, 0),
    transactionalId: tid === undefined || tid === '' ? undefined : tid,
  };
}

// ---------------------------------------------------------------------------------------------
// Consumer

export type Isolation = 'read_committed' | 'read_uncommitted';

export interface ConsumerSettings {
  autoOffsetReset: 'earliest' | 'latest' | 'error';
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
  groupInstanceId: string | undefined;
  isolation: Isolation;
  fetchMaxBytes: number;
  partitionMaxBytes: number;
  fetchWaitMaxMs: number;
  fetchMinBytes: number;
  /**
   * Read-ahead per partition: fetching goes on while fewer records than this are buffered
   * (librdkafka's queued.min.messages) and fewer bytes than prefetchBytes.
   */
  prefetchRecords: number;
  /** queued.max.messages.kbytes × 1024 (per partition here). */
  prefetchBytes: number;
}

export function consumerSettings(props: KafkaProps): ConsumerSettings {
  const reset = (props['auto.offset.reset'] ?? 'earliest').trim().toLowerCase();
  let autoOffsetReset: ConsumerSettings['autoOffsetReset'];
  if (['earliest', 'smallest', 'beginning'].includes(reset)) autoOffsetReset = 'earliest';
  else if (['latest', 'largest', 'end'].includes(reset)) autoOffsetReset = 'latest';
  else if (['error', 'none'].includes(reset)) autoOffsetReset = 'error';
  else throw configError(`Invalid value for Kafka property 'auto.offset.reset': ${props['auto.offset.reset']}`);
  const iso = (props['isolation.level'] ?? 'read_committed').trim().toLowerCase();
  if (iso !== 'read_committed' && iso !== 'read_uncommitted') {
    throw configError(`Invalid value for Kafka property 'isolation.level': ${props['isolation.level']}`);
  }
  const session = intProp(props, ['session.timeout.ms'], 45_000, 1);
  const heartbeat = Math.min(intProp(props, ['heartbeat.interval.ms'], Math.min(3000, Math.floor(session / 3)), 1), session);
  const rebalance = Math.max(intProp(props, ['max.poll.interval.ms'], 300_000, 1), session);
  const fetchMax = intProp(props, ['fetch.max.bytes'], 50 * 1024 * 1024, 1);
  const gi = props['group.instance.id'];
  return {
    autoOffsetReset,
    sessionTimeoutMs: session,
    heartbeatIntervalMs: heartbeat,
    rebalanceTimeoutMs: rebalance,
    groupInstanceId: gi === undefined || gi === '' ? undefined : gi,
    isolation: iso,
    fetchMaxBytes: fetchMax,
    partitionMaxBytes: Math.min(intProp(props, ['max.partition.fetch.bytes'], 1024 * 1024, 1), fetchMax),
    fetchWaitMaxMs: intProp(props, ['fetch.wait.max.ms'], 500, 0),
    fetchMinBytes: intProp(props, ['fetch.min.bytes'], 1, 1),
    prefetchRecords: intProp(props, ['queued.min.messages'], 4096, 1),
    prefetchBytes: intProp(props, ['queued.max.messages.kbytes'], 16 * 1024, 1) * 1024,
  };
}
