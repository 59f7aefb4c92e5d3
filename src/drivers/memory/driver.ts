/**
 * The `memory` driver (alias `simple`): topics live in process memory. For fast tests and
 * examples. Drivers created with the same `store` option share their topics (and consumer
 * positions); without it each driver has a private store.
 */
import { deserializeRecord } from '../../api/components.js';
import { selectFromBuffer } from '../../api/data-selection.js';
import { EventRecord } from '../../api/event.js';
import { forEachRecord } from '../../api/driver-spi.js';
import type {
  ConsumerSource,
  DriverImpl,
  EventBatch,
  EventID,
  EventIds,
  Headers,
  SourceEvent,
  SourceOptions,
  TopicComponentsConfig,
  TopicImpl,
  TopicWriter,
} from '../../api/driver-spi.js';
import { DiasporaError, ErrorCodes } from '../../api/errors.js';
import { isJsonObject, type Json, type JsonObject } from '../../api/json.js';
import type { Metadata, PartitionInfo } from '../../api/metadata.js';
import { parseNumPartitions, validateTopicName } from '../common/topic-options.js';
import { Notifier, Wakeup } from '../common/notifier.js';
import { interleave } from '../common/round-robin.js';

interface StoredEvent {
  record: Buffer;
  data: Buffer;
  headers: Headers | undefined;
}

class MemoryPartition {
  readonly events: StoredEvent[] = [];
  readonly notifier = new Notifier();
}

class MemoryTopic {
  readonly partitions: MemoryPartition[];
  readonly positions = new Map<string, Map<number, EventID>>();
  deleted = false;
  constructor(
    readonly name: string,
    n: number,
    readonly options: JsonObject,
    readonly components: TopicComponentsConfig,
  ) {
    this.partitions = Array.from({ length: n }, () => new MemoryPartition());
  }
}

type Store = Map<string, MemoryTopic>;
const sharedStores = new Map<string, Store>();

class MemoryDriver implements DriverImpl {
  constructor(private readonly store: Store) {}

  async createTopic(name: string, options: JsonObject, components: TopicComponentsConfig): Promise<void> {
    validateTopicName(name);
    const n = parseNumPartitions(options);
    if (this.store.has(name)) throw new DiasporaError(`Topic already exists: ${name}`, { code: ErrorCodes.TOPIC_EXISTS });
    this.store.set(name, new MemoryTopic(name, n, options, components));
  }

  async openTopic(name: string): Promise<TopicImpl | undefined> {
    const t = this.store.get(name);
    return t === undefined ? undefined : new MemoryTopicImpl(t);
  }

  async topicExists(name: string): Promise<boolean> {
    return this.store.has(name);
  }

  async listTopics(): Promise<Map<string, Json>> {
    const m = new Map<string, Json>();
    for (const [name, t] of this.store) {
      m.set(name, {
        name,
        num_partitions: t.partitions.length,
        validator: t.components.validator,
        serializer: t.components.serializer,
        partition_selector: t.components.partitionSelector,
      });
    }
    return m;
  }

  async deleteTopic(name: string): Promise<void> {
    const t = this.store.get(name);
    if (t === undefined) throw new DiasporaError(`Topic ${name} does not exist`, { code: ErrorCodes.TOPIC_NOT_FOUND });
    t.deleted = true;
    this.store.delete(name);
    for (const p of t.partitions) p.notifier.notify();
  }

  async close(): Promise<void> {}
}

class MemoryTopicImpl implements TopicImpl {
  readonly partitions: readonly PartitionInfo[];
  readonly sourceId: string;
  constructor(private readonly t: MemoryTopic) {
    this.partitions = t.partitions.map((_, i) => ({ partition_id: i }));
    this.sourceId = `memory:${t.name}`;
  }
  get components(): TopicComponentsConfig {
    return this.t.components;
  }
  async createWriter(): Promise<TopicWriter> {
    const t = this.t;
    return {
      async append(partition: number, batch: EventBatch): Promise<EventIds> {
        if (t.deleted) throw new DiasporaError(`Topic ${t.name} does not exist`, { code: ErrorCodes.TOPIC_NOT_FOUND });
        const p = t.partitions[partition] as MemoryPartition;
        const first = BigInt(p.events.length);
        forEachRecord(batch, (i, record) => {
          const data = batch.data[i];
          p.events.push({
            record: Buffer.from(record), // a copy: the caller may reuse its buffers once the push resolved
            data: data === undefined || data.size === 0 ? EMPTY : Buffer.from(data.toBuffer()),
            headers: batch.headers?.[i],
          });
        });
        p.notifier.notify();
        return { first };
      },
      async sync(): Promise<void> {},
      async close(): Promise<void> {},
    };
  }
  async createSource(o: SourceOptions): Promise<ConsumerSource> {
    return new MemorySource(this.t, o);
  }
  async close(): Promise<void> {}
}

const EMPTY = Buffer.alloc(0);

class MemorySource implements ConsumerSource {
  private readonly next = new Map<number, EventID>();
  private readonly start = new Map<number, EventID>();
  private rr = 0;
  constructor(
    private readonly t: MemoryTopic,
    private readonly o: SourceOptions,
  ) {
    const saved = o.consumerName === '' ? undefined : t.positions.get(o.consumerName);
    for (const p of o.partitions) {
      const end = BigInt((t.partitions[p] as MemoryPartition).events.length);
      const at = o.startAt?.get(p);
      const start = at !== undefined ? (at < end ? at : end) : o.startFrom === 'latest' ? end : o.startFrom === 'committed' ? (saved?.get(p) ?? 0n) : 0n;
      this.next.set(p, start);
      this.start.set(p, start);
    }
  }

  async startPositions(): Promise<Map<number, EventID>> {
    return new Map(this.start);
  }

  private take(max: number): SourceEvent[] {
    const parts = this.o.partitions;
    const lists: SourceEvent[][] = parts.map(() => []);
    // positions advance only when the whole take succeeds: a read error must not skip events
    const saved = new Map(this.next);
    const quota = Math.max(1, Math.ceil(max / parts.length));
    let total = 0;
    for (let k = 0; k < parts.length && total < max; k++) {
      const pi = parts[k] as number;
      const p = this.t.partitions[pi] as MemoryPartition;
      const list = lists[k] as SourceEvent[];
      let id = this.next.get(pi) as EventID;
      while (list.length < quota && total < max && id < BigInt(p.events.length)) {
        const ev = p.events[Number(id)] as StoredEvent;
        const metadata: Metadata = deserializeRecord(this.o.serializer, ev.record);
        let data;
        try {
          data = selectFromBuffer(metadata, ev.data, this.o.dataSelector, this.o.dataAllocator);
        } catch (err) {
          for (const [k, v] of saved) this.next.set(k, v);
          throw err;
        }
        list.push(new EventRecord(pi, id, metadata, data, ev.headers));
        id++;
        total++;
      }
      this.next.set(pi, id);
    }
    const { events, next } = interleave(lists, this.rr);
    this.rr = next;
    return events;
  }

  async fetch(max: number, signal: AbortSignal, wait: boolean): Promise<SourceEvent[]> {
    for (;;) {
      if (this.t.deleted) throw new DiasporaError(`Topic ${this.t.name} does not exist`, { code: ErrorCodes.TOPIC_NOT_FOUND });
      const wakeup = new Wakeup(this.o.partitions.map((pi) => (this.t.partitions[pi] as MemoryPartition).notifier));
      let out: SourceEvent[];
      try {
        out = this.take(max);
      } catch (err) {
        wakeup.cancel();
        throw err;
      }
      if (out.length > 0 || !wait || signal.aborted) {
        wakeup.cancel();
        return out;
      }
      await wakeup.wait(signal, 60_000);
    }
  }

  async commit(positions: ReadonlyMap<number, EventID>): Promise<void> {
    if (this.o.consumerName === '') return;
    let saved = this.t.positions.get(this.o.consumerName);
    if (saved === undefined) this.t.positions.set(this.o.consumerName, (saved = new Map()));
    for (const [p, id] of positions) saved.set(p, id);
  }

  async endPositions(): Promise<Map<number, EventID>> {
    return new Map(this.o.partitions.map((p) => [p, BigInt((this.t.partitions[p] as MemoryPartition).events.length)]));
  }

  async close(): Promise<void> {}
}

export function createMemoryDriver(options: Metadata): DriverImpl {
  const o = options.json;
  if (!isJsonObject(o)) throw new DiasporaError('memory driver options must be a JSON object', { code: ErrorCodes.CONFIG });
  const storeName = o['store'];
  if (storeName !== undefined && typeof storeName !== 'string') {
    throw new DiasporaError('"store" option of the memory driver should be a string', { code: ErrorCodes.CONFIG });
  }
  if (storeName === undefined) return new MemoryDriver(new Map());
  let store = sharedStores.get(storeName);
  if (store === undefined) sharedStores.set(storeName, (store = new Map()));
  return new MemoryDriver(store);
}
