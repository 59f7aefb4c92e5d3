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
 * Object.keys) symbol, when whoever built it could produce the text cheaply (the forwarder's
 * provenance headers); drivers that store headers as JSON then skip encoding them.
 */
export const ENCODED_HEADERS: unique symbol = Symbol('diaspora-stream.encoded-headers');

/** The canonical JSON attached with ENCODED_HEADERS, if any. */
export function encodedHeaders(h: Headers): string | undefined {
  return (h as { [ENCODED_HEADERS]?: string })[ENCODED_HEADERS];
}

export class EventRecord implements Event {
  /** Set by the consumer when it delivers the event. */
  owner: EventOwner | undefined;
  private rawId: EventID | number;

  /** `id` may be given as a safe-integer number: the bigint is built only if somebody reads it. */
  constructor(
    readonly partitionIndex: number,
    id: EventID | number,
    readonly metadata: Metadata,
    readonly data: DataSegments,
    readonly headers: Headers = NO_HEADERS,
    /** The serialized metadata record as stored, when the driver has it at hand. */
    readonly record?: Uint8Array,
    /** Source timestamp in ns since the epoch, when the driver knows one. */
    readonly timestamp?: bigint,
  ) {
    this.rawId = id;
  }

  get id(): EventID {
    const r = this.rawId;
    return typeof r === 'bigint' ? r : (this.rawId = BigInt(r));
  }

  /** The id as a number when the driver gave one (ack tracking avoids bigints this way). */
  get idNumber(): number | undefined {
    return typeof this.rawId === 'number' ? this.rawId : undefined;
  }

  get partition(): PartitionInfo {
    return this.owner?.partitionInfo(this.partitionIndex) ?? { partition_id: this.partitionIndex };
  }

  acknowledge(): Future<void> {
    if (this.owner === undefined) throw new Error('event was not delivered by a consumer');
    return this.owner.acknowledgeEvent(this.partitionIndex, this.id);
  }
}
