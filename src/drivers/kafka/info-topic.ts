/**
 * Topic naming and the info topic (kafka-octopus.md §3, §4, §4.1): the Kafka names of a topic and
 * of its info topic, the three component records written at creation, and reading them back.
 */
import { PartitionSelector, Serializer, Validator } from '../../api/components.js';
import type { TopicComponentsConfig } from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes, errorMessage } from '../../api/errors.js';
import { dumpCompact, isJsonObject, parseJson, type Json, type JsonObject } from '../../api/json.js';
import { log } from '../../api/logging.js';
import { consumableRecords } from './batches.js';
import type { KafkaFetchClient } from './client.js';

export interface Naming {
  namespace: string | undefined;
  infoTopicPrefix: string;
}

/** Kafka topic of a diaspora topic: `<namespace>.<name>` or `<name>`. */
export function kafkaTopicName(n: Naming, name: string): string {
  return n.namespace === undefined ? name : `${n.namespace}.${name}`;
}

/** Info topic: `<namespace>.<prefix><name>` or `<prefix><name>`. */
export function infoTopicName(n: Naming, name: string): string {
  return kafkaTopicName(n, n.infoTopicPrefix + name);
}

/** Kafka's topic name rule: 1..249 characters of [a-zA-Z0-9._-], not "." nor "..". */
export function checkKafkaTopicName(name: string, kafkaName: string): void {
  if (kafkaName.length === 0 || kafkaName.length > 249 || !/^[a-zA-Z0-9._-]+$/.test(kafkaName) || kafkaName === '.' || kafkaName === '..') {
    throw new DiasporaError(`Invalid topic name: ${name}`, { code: ErrorCodes.INVALID_TOPIC_NAME });
  }
}

/**
 * The diaspora name of a Kafka topic for listing, or undefined when it is not a data topic of
 * this driver (other namespace, info topic, Kafka-internal or checkpoint topic).
 */
export function listedName(n: Naming, kafkaName: string): string | undefined {
  let rest = kafkaName;
  if (n.namespace !== undefined) {
    if (!kafkaName.startsWith(n.namespace + '.')) return undefined;
    rest = kafkaName.slice(n.namespace.length + 1);
  }
  if (kafkaName.startsWith('__') || rest.startsWith('__')) return undefined;
  if (n.infoTopicPrefix !== '' && rest.startsWith(n.infoTopicPrefix)) return undefined;
  return rest === '' ? undefined : rest;
}

/** The three info records: validator, partition selector, serializer (compact canonical JSON). */
export function infoRecords(c: TopicComponentsConfig): Buffer[] {
  return [c.validator, c.partitionSelector, c.serializer].map((v) => Buffer.from(dumpCompact(v), 'utf8'));
}

const DEFAULT: JsonObject = { type: 'default' };

export function defaultComponents(): TopicComponentsConfig {
  return { validator: { ...DEFAULT }, partitionSelector: { ...DEFAULT }, serializer: { ...DEFAULT } };
}

const LABELS = ['validator', 'partition selector', 'serializer'] as const;

/**
 * Components from the first three info records; errors (invalid JSON, not an object, unknown
 * type) are `Cannot open topic <name>: invalid <component> configuration in info topic: <detail>`.
 */
export async function parseInfoRecords(name: string, values: readonly (Buffer | null)[]): Promise<TopicComponentsConfig> {
  const parsed: JsonObject[] = [];
  const factories = [Validator.fromMetadata, PartitionSelector.fromMetadata, Serializer.fromMetadata];
  for (let i = 0; i < 3; i++) {
    const label = LABELS[i] as string;
    const fail = (detail: string): never => {
      throw new DiasporaError(`Cannot open topic ${name}: invalid ${label} configuration in info topic: ${detail}`, { code: ErrorCodes.CONFIG });
    };
    let v: Json;
    try {
      v = parseJson((values[i] ?? Buffer.alloc(0)).toString('utf8'));
    } catch (err) {
      fail(errorMessage(err));
    }
    if (!isJsonObject(v!)) fail('expected a JSON object');
    const obj = v! as JsonObject;
    try {
      await (factories[i] as (md: Json) => Promise<unknown>)(obj);
    } catch (err) {
      fail(errorMessage(err));
    }
    parsed.push(obj);
  }
  return { validator: parsed[0] as JsonObject, partitionSelector: parsed[1] as JsonObject, serializer: parsed[2] as JsonObject };
}

/**
 * Reads up to the first three records of partition 0 of the info topic (read_committed), stopping
 * at its end or after `timeoutMs`.
 */
export async function readInfoValues(fetcher: KafkaFetchClient, infoTopic: string, timeoutMs = 30_000): Promise<(Buffer | null)[]> {
  const start = (await fetcher.listOffsets(infoTopic, [0], 'earliest', 'read_committed')).get(0) ?? 0n;
  const end = (await fetcher.listOffsets(infoTopic, [0], 'latest', 'read_committed')).get(0) ?? 0n;
  const out: (Buffer | null)[] = [];
  let offset = start;
  const deadline = Date.now() + timeoutMs;
  let refresh = false;
  while (out.length < 3 && offset < end && Date.now() < deadline) {
    const leader = (await fetcher.leaders(infoTopic, refresh)).leaders.get(0);
    if (leader === undefined) break;
    const parts = await fetcher.fetch(leader, infoTopic, [{ partition: 0, offset }], {
      maxWaitMs: 100,
      minBytes: 1,
      maxBytes: 1024 * 1024,
      partitionMaxBytes: 1024 * 1024,
      isolation: 'read_committed',
    });
    const p = parts.find((x) => x.partition === 0);
    if (p === undefined) break;
    if (p.error !== undefined) {
      refresh = true;
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const { records, next } = consumableRecords(p, offset, 'read_committed');
    for (const r of records) if (out.length < 3) out.push(r.value);
    if (next === undefined) break;
    offset = next;
  }
  return out;
}

/** The info-topic warning of §4.1 (defaults are used), with octopus's own prefix so that log searches for it keep working. */
export function warnInfoTopic(kafkaInfoTopic: string): void {
  log.warn(`[octopus:warning] Could not read info topic ${kafkaInfoTopic}, using default validator, serializer, and partition selector`);
}
