/**
 * An event delivered by a consumer (api.md §9). Drivers' sources build EventRecords directly and
 * the consumer adopts them at delivery, so reading an event costs one object, not a wrapper chain.
 */
import type { DataSegments } from './data-segments.js';
import type { Future } from './future.js';
import type { Metadata, PartitionInfo } from './metadata.js';

export type EventID = bigint;
export type Headers = Readonly<Record<string, string>>;

export interface Event {
  readonly metadata: Metadata;
  readonly data: DataSegments;
  readonly partition: PartitionInfo;
  readonly partitionIndex: number;
  readonly id: EventID;
  readonly headers: Headers;
  /** Marks the event done; resolves once a durable position covers it. */
  acknowledge(): Future<void>;
}

/** What acknowledges an event: the consumer that delivered it. */
export interface EventOwner {
  acknowledgeEvent(partition: number, id: EventID): Future<void>;
  partitionInfo(partition: number): PartitionInfo;
}

export const NO_HEADERS: Headers = Object.freeze({});

/**
 * A headers object may carry its canonical compact JSON under this (non-enumerable to
 * Object.keys) symbol, when whoever built it can write the bytes cheaply (the forwarder's
 * provenance headers); drivers that store headers as JSON then skip encoding them.
 */
export const ENCODED_HEADERS: unique symbol = Symbol('diaspora-stream.encoded-headers');

/** The canonical compact JSON (UTF-8) of a headers object, written without an intermediate string. */
export interface EncodedHeaders {
  /** The headers object encoded: a copy (spread copies symbol keys too) may differ, so it is not trusted. */
  readonly of: Headers;
  readonly byteLength: number;
  writeTo(buf: Uint8Array, pos: number): void;
  /**
   * The same headers as a Kafka record's headers section (zigzag varint count, then each key and
   * value as a varint length and bytes), when the builder offers it (drivers writing Kafka records).
   */
  readonly kafka?: EncodedBytes;
}

/** Bytes written on demand: their length, and the writer. */
export interface EncodedBytes {
  readonly byteLength: number;
  writeTo(buf: Uint8Array, pos: number): void;
}

/** The encoding attached with ENCODED_HEADERS to this very object, if any. */
export function encodedHeaders(h: Headers): EncodedHeaders | undefined {
  const enc = (h as { [ENCODED_HEADERS]?: EncodedHeaders })[ENCODED_HEADERS];
  return enc !== undefined && enc.of === h ? enc : undefined;
}

export class EventRecord implements Event {
  /** Set by the consumer when it delivers the event. */
  owner: EventOwner | undefined;
  /** The id as given (a safe integer), kept even after the bigint is built. */
  private readonly num: number | undefined;
  private big: EventID | undefined;

  /** `id` may be given as a safe-integer number: the bigint is built only if somebody reads it. */
  constructor(
    readonly partitionIndex: number,
    id: EventID | number,
    readonly metadata: Metadata,
    readonly data: DataSegments,
    readonly headers: Headers = NO_HEADERS,
  ) {
    if (typeof id === 'number') this.num = id;
    else this.big = id;
  }

  get id(): EventID {
    return (this.big ??= BigInt(this.num as number));
  }

  /** The id as a number when the driver gave one (ack tracking avoids bigints this way). */
  get idNumber(): number | undefined {
    return this.num;
  }

  get partition(): PartitionInfo {
    return this.owner?.partitionInfo(this.partitionIndex) ?? { partition_id: this.partitionIndex };
  }

  acknowledge(): Future<void> {
    if (this.owner === undefined) throw new Error('event was not delivered by a consumer');
    return this.owner.acknowledgeEvent(this.partitionIndex, this.id);
  }
}
