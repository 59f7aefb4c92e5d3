/**
 * diaspora-stream: the Diaspora Stream API for Node.js.
 * See README.md for concepts and usage; specs live beside the project in shared/specs.
 */
export { DiasporaError, InvalidMetadata, StopEventProcessor, ErrorCodes, type ErrorCode } from './api/errors.js';
export { Metadata, type Json, type JsonObject, type PartitionInfo } from './api/metadata.js';
export { parseJson, dumpCompact, dumpPretty, jsonEquals } from './api/json.js';
export { DataSegments, type DataLike } from './api/data-segments.js';
export { DataDescriptor, type Selection } from './api/data-descriptor.js';
export {
  FullDataSelector,
  NoDataSelector,
  ByteArrayAllocator,
  type DataSelector,
  type DataAllocator,
} from './api/data-selection.js';
export { Deferred, type Future } from './api/future.js';
export { InlineThreadPool, AsyncThreadPool, makeThreadPool, type ThreadPool } from './api/thread-pool.js';
export {
  Validator,
  Serializer,
  PartitionSelector,
  DefaultValidator,
  SchemaValidator,
  EventbridgeValidator,
  DefaultSerializer,
  SchemaSerializer,
  DefaultPartitionSelector,
  type ValidatorImpl,
  type SerializerImpl,
  type PartitionSelectorImpl,
} from './api/components.js';
export type { OutputArchive, InputArchive } from './api/archive.js';
export {
  getRegistry,
  registerDriver,
  registerValidator,
  registerSerializer,
  registerPartitionSelector,
  type Registry,
} from './api/registry.js';
export { Driver, type CreateTopicOptions } from './api/driver.js';
export type { TopicHandle } from './api/topic.js';
export { Ordering, type Producer, type ProducerOptions, type PushOptions } from './api/producer.js';
export {
  NO_MORE_EVENTS,
  NoMoreEvents,
  type Consumer,
  type ConsumerOptions,
  type Event,
  type ProcessOptions,
} from './api/consumer.js';
export type * from './api/driver-spi.js';
export { Statistics } from './api/statistics.js';
export { setLogSink, type LogLevel, type LogSink } from './api/logging.js';
