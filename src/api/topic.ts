/**
 * TopicHandle (api.md §7): an opened topic with its components; creates producers and consumers
 * over the driver's TopicImpl.
 */
import type { PartitionSelectorImpl, SerializerImpl, ValidatorImpl } from './components.js';
import { ConsumerImpl, type Consumer, type ConsumerOptions } from './consumer.js';
import type { TopicImpl } from './driver-spi.js';
import type { Driver } from './driver.js';
import { DiasporaError, ErrorCodes } from './errors.js';
import { isJsonObject, type JsonObject } from './json.js';
import type { PartitionInfo } from './metadata.js';
import { ProducerImpl, type Producer, type ProducerOptions } from './producer.js';

export interface TopicHandle {
  readonly name: string;
  readonly driver: Driver;
  readonly partitions: readonly PartitionInfo[];
  readonly validator: ValidatorImpl;
  readonly partitionSelector: PartitionSelectorImpl;
  readonly serializer: SerializerImpl;
  /** Stable id of the topic's stream (provenance). */
  readonly sourceId: string;
  producer(o?: ProducerOptions): Promise<Producer>;
  consumer(name: string, o?: ConsumerOptions): Promise<Consumer>;
  close(): Promise<void>;
}

function objectOption(v: unknown, what: string): JsonObject {
  if (v === undefined || v === null) return {};
  if (!isJsonObject(v)) throw new DiasporaError(`${what} options must be a JSON object`, { code: ErrorCodes.INVALID_ARGUMENT });
  return v;
}

export class TopicHandleImpl implements TopicHandle {
  private closed = false;
  constructor(
    readonly name: string,
    readonly driver: Driver,
    readonly impl: TopicImpl,
    readonly validator: ValidatorImpl,
    readonly partitionSelector: PartitionSelectorImpl,
    readonly serializer: SerializerImpl,
  ) {
    driver.openResources.topics.add(this);
  }

  get partitions(): readonly PartitionInfo[] {
    return this.impl.partitions;
  }

  get sourceId(): string {
    return this.impl.sourceId;
  }

  private checkOpen(): void {
    if (this.closed) throw new DiasporaError(`Topic ${this.name} is closed`, { code: ErrorCodes.CLOSED });
  }

  async producer(o: ProducerOptions = {}): Promise<Producer> {
    this.checkOpen();
    const options = objectOption(o.options, 'Producer');
    const writer = await this.impl.createWriter({
      producerName: o.name ?? '',
      options,
      batchSize: o.batchSize ?? 'adaptive',
      lingerMs: o.lingerMs ?? 5,
    });
    return new ProducerImpl(this, writer, o, this.driver.defaultThreadPool(), this.driver.openResources.producers);
  }

  async consumer(name: string, o: ConsumerOptions = {}): Promise<Consumer> {
    this.checkOpen();
    const n = this.impl.partitions.length;
    const targets = o.targets ?? [];
    for (const t of targets) {
      if (!Number.isInteger(t) || t < 0 || t >= n) {
        throw new DiasporaError(`Invalid target partition ${String(t)} (topic ${this.name} has ${n} partitions)`, {
          code: ErrorCodes.INVALID_ARGUMENT,
        });
      }
    }
    const partitions = targets.length > 0 ? [...new Set(targets)].sort((a, b) => a - b) : Array.from({ length: n }, (_, i) => i);
    const startFrom = o.startFrom ?? 'committed';
    if (startFrom !== 'committed' && startFrom !== 'earliest' && startFrom !== 'latest') {
      throw new DiasporaError(`Invalid startFrom: ${String(startFrom)}`, { code: ErrorCodes.INVALID_ARGUMENT });
    }
    for (const [p, id] of o.startAt ?? []) {
      if (!partitions.includes(p) || typeof id !== 'bigint' || id < 0n) {
        throw new DiasporaError(`Invalid startAt: partition ${String(p)} at ${String(id)}`, { code: ErrorCodes.INVALID_ARGUMENT });
      }
    }
    const batchSize = o.batchSize ?? 'adaptive';
    const source = await this.impl.createSource({
      consumerName: name,
      partitions,
      targets,
      startFrom,
      startAt: o.startAt,
      serializer: this.serializer,
      dataSelector: o.dataSelector,
      dataAllocator: o.dataAllocator,
      batchHint: batchSize === 'adaptive' ? 1024 : batchSize,
      options: objectOption(o.options, 'Consumer'),
    });
    const ackIntervalMs = o.ackIntervalMs ?? this.impl.defaultAckIntervalMs;
    return new ConsumerImpl(
      name,
      this,
      source,
      targets,
      ackIntervalMs === undefined ? o : { ...o, ackIntervalMs },
      this.driver.defaultThreadPool(),
      this.driver.openResources.consumers,
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.driver.openResources.topics.delete(this);
    await this.impl.close();
  }
}
