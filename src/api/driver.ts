/**
 * Driver (api.md §7): created by type through the registry; creates, opens, lists and deletes
 * topics. Drivers implement DriverImpl (driver-spi.ts); this facade adds component handling and
 * the behaviour every driver shares.
 */
import { OpenResources } from './open-resources.js';
import {
  PartitionSelector,
  Serializer,
  Validator,
  persistedConfig,
  type Created,
  type PartitionSelectorImpl,
  type SerializerImpl,
  type ValidatorImpl,
} from './components.js';
import type { DriverImpl, TopicComponentsConfig } from './driver-spi.js';
import { DiasporaError, ErrorCodes } from './errors.js';
import { isJsonObject, type Json, type JsonObject } from './json.js';
import { Metadata } from './metadata.js';
import { resolveFactory } from './registry.js';
import { InlineThreadPool, makeThreadPool, type ThreadPool } from './thread-pool.js';
import { TopicHandleImpl, type TopicHandle } from './topic.js';

export interface CreateTopicOptions {
  options?: Json;
  validator?: ValidatorImpl | Json;
  partitionSelector?: PartitionSelectorImpl | Json;
  serializer?: SerializerImpl | Json;
}

type Impl<T> = T & { metadata(): Metadata };

function isImpl(x: unknown): x is Impl<object> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && typeof (x as { metadata?: unknown }).metadata === 'function';
}

async function component<T>(
  given: T | Json | undefined,
  fromMetadata: (md: Json) => Promise<Created<T>>,
): Promise<JsonObject> {
  if (isImpl(given)) return persistedConfig(given, undefined);
  const created = await fromMetadata(given === undefined ? {} : (given as Json));
  return persistedConfig(created.impl as Impl<T>, created.key);
}

let builtins: Promise<unknown> | undefined;

export class Driver {
  private readonly pool = new InlineThreadPool();
  private closed = false;
  /** @internal Topic handles, producers and consumers opened through this driver and still open. */
  readonly openResources = new OpenResources();

  private constructor(
    readonly type: string,
    readonly impl: DriverImpl,
  ) {}

  /** Creates a driver by factory key (`files`, `kafka`, `name:module`, …). */
  static async create(type: string, options: Json | Metadata = {}): Promise<Driver> {
    builtins ??= import('../drivers/builtin.js');
    await builtins;
    const md = options instanceof Metadata ? options : new Metadata(options);
    const factory = await resolveFactory('drivers', type);
    return new Driver(type, await factory(md));
  }

  private checkOpen(): void {
    if (this.closed) throw new DiasporaError('Driver is closed', { code: ErrorCodes.CLOSED });
  }

  async createTopic(name: string, o: CreateTopicOptions = {}): Promise<void> {
    this.checkOpen();
    const options = o.options ?? {};
    if (!isJsonObject(options)) throw new DiasporaError('Topic options must be a JSON object', { code: ErrorCodes.CONFIG });
    const components: TopicComponentsConfig = {
      validator: await component(o.validator, Validator.fromMetadata),
      serializer: await component(o.serializer, Serializer.fromMetadata),
      partitionSelector: await component(o.partitionSelector, PartitionSelector.fromMetadata),
    };
    await this.impl.createTopic(name, options, components);
  }

  async openTopic(name: string): Promise<TopicHandle> {
    this.checkOpen();
    const impl = await this.impl.openTopic(name);
    if (impl === undefined) throw new DiasporaError(`Topic ${name} does not exist`, { code: ErrorCodes.TOPIC_NOT_FOUND });
    try {
      const validator = (await Validator.fromMetadata(impl.components.validator)).impl;
      const serializer = (await Serializer.fromMetadata(impl.components.serializer)).impl;
      const selector = (await PartitionSelector.fromMetadata(impl.components.partitionSelector)).impl;
      selector.setPartitions(impl.partitions);
      return new TopicHandleImpl(name, this, impl, validator, selector, serializer);
    } catch (err) {
      await impl.close();
      throw err;
    }
  }

  topicExists(name: string): Promise<boolean> {
    this.checkOpen();
    return this.impl.topicExists(name);
  }

  /** Topic name → driver-defined description, sorted by name. */
  async listTopics(): Promise<Map<string, Json>> {
    this.checkOpen();
    const m = await this.impl.listTopics();
    return new Map([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  deleteTopic(name: string): Promise<void> {
    this.checkOpen();
    return this.impl.deleteTopic(name);
  }

  defaultThreadPool(): ThreadPool {
    return this.pool;
  }

  makeThreadPool(count: number): ThreadPool {
    return makeThreadPool(count);
  }

  /** Closes every topic handle, producer (flushing it) and consumer still open, then releases the driver's storage. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.openResources.closeAll();
    } finally {
      await this.impl.close();
    }
  }
}
