/**
 * One forwarding policy (forwarding.md §3): source consumer → filters → partition mapping →
 * destination batches → confirmation → source acknowledgement.
 *
 * Order and safety: batches are written one after the other (the next batch is read while the
 * current one is written); an event is acknowledged on the source only once the destination
 * confirmed it (or a filter dropped it), so the committed source position is always a safe
 * restart point. A failed write is retried with backoff — the unconfirmed suffix of the batch,
 * in order — and never skipped.
 */
import { NO_MORE_EVENTS, type Consumer, type Event } from '../api/consumer.js';
import type { DataAllocator, DataSelector } from '../api/data-selection.js';
import { NoDataSelector } from '../api/data-selection.js';
import type { DataSegments } from '../api/data-segments.js';
import type { EventID, Headers } from '../api/driver-spi.js';
import { DiasporaError, ErrorCodes, errorMessage } from '../api/errors.js';
import type { Future } from '../api/future.js';
import { dumpCompact, isJsonObject, type Json } from '../api/json.js';
import type { Metadata } from '../api/metadata.js';
import type { Producer } from '../api/producer.js';
import type { TopicHandle } from '../api/topic.js';
import type { PartitionMapping, PolicyConfig } from './config.js';
import { applyFilters, type Filter, type ForwardEvent } from './filters.js';
import type { PolicyMetrics } from './metrics.js';

export type PolicyState = 'starting' | 'running' | 'retrying' | 'halted' | 'stopping' | 'stopped';

export interface PolicyLogger {
  info(m: string): void;
  warn(m: string): void;
  error(m: string): void;
  debug(m: string): void;
}

interface Outgoing {
  event: Event;
  metadata: Metadata;
  data: DataSegments;
  headers: Headers | undefined;
  partition: number | undefined;
  bytes: number;
}

interface Batch {
  /** Every event read, in source order (acknowledged once the batch is done). */
  read: Event[];
  /** Events to write, in source order. */
  out: Outgoing[];
  readAt: number;
}

const STOP = Symbol('stop');

/** Ensures the destination can take a mapping (checked at start, fatal). */
export function checkPartitionMapping(cfg: PolicyConfig, src: TopicHandle, dst: TopicHandle): PartitionMapping {
  const ns = src.partitions.length;
  const nd = dst.partitions.length;
  const m = cfg.partitions ?? (nd >= ns ? { kind: 'same' } : { kind: 'auto' });
  if (m.kind === 'same' && nd < ns) {
    throw new DiasporaError(`Policy ${cfg.name}: partitions 'same' needs at least ${ns} destination partitions (${cfg.to.ref} has ${nd})`, {
      code: ErrorCodes.CONFIG,
    });
  }
  if (m.kind === 'fixed' && m.partition >= nd) {
    throw new DiasporaError(`Policy ${cfg.name}: partitions 'fixed:${m.partition}' but ${cfg.to.ref} has ${nd} partition(s)`, { code: ErrorCodes.CONFIG });
  }
  return m;
}

/** FNV-1a over the canonical JSON of a metadata field (absent = empty): stable across processes and drivers. */
function hashPartition(md: Metadata, path: readonly string[], n: number): number {
  let v: Json | undefined = md.json;
  for (const k of path) v = isJsonObject(v) ? v[k] : undefined;
  const text = v === undefined ? '' : dumpCompact(v);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % n;
}

export class ForwardPolicy {
  state: PolicyState = 'starting';
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private readonly mapping: PartitionMapping;
  private stopping = false;
  private stopSignal!: () => void;
  private readonly stopped = new Promise<typeof STOP>((r) => (this.stopSignal = () => r(STOP)));
  private ends: Map<number, EventID> | undefined;
  private readonly delivered = new Map<number, EventID>();
  private lastErrorLog = new Map<string, number>();
  private unconfirmed = 0;
  private lastCommit = performance.now();

  constructor(
    readonly cfg: PolicyConfig,
    private readonly src: TopicHandle,
    private readonly dst: TopicHandle,
    private readonly log: PolicyLogger,
    private readonly metrics: PolicyMetrics,
    private readonly plugins: { selector?: DataSelector; allocator?: DataAllocator; filters: Filter[] },
  ) {
    this.mapping = checkPartitionMapping(cfg, src, dst);
  }

  private get label(): string {
    return `${this.cfg.from.ref} -> ${this.cfg.to.ref}`;
  }

  private setState(s: PolicyState): void {
    this.state = s;
    this.metrics.setState(s);
  }

  /** Opens the source consumer and destination producer. */
  async open(): Promise<void> {
    const selector = this.cfg.forwardData ? this.plugins.selector : NoDataSelector;
    this.consumer = await this.src.consumer(this.cfg.consumerName, {
      startFrom: this.cfg.start,
      ackIntervalMs: this.cfg.checkpointIntervalMs,
      ...(selector !== undefined ? { dataSelector: selector } : {}),
      ...(this.plugins.allocator !== undefined ? { dataAllocator: this.plugins.allocator } : {}),
    });
    this.producer = await this.dst.producer({
      name: this.cfg.name,
      batchSize: 'adaptive',
      lingerMs: this.cfg.batchLingerMs,
      maxNumBatches: Math.max(this.cfg.maxInFlight, 2),
    });
    if (this.cfg.stopAtEnd) this.ends = await this.consumer.endPositions();
  }

  /** Runs until stop() or, with stop_at_end, the end recorded at start. */
  async run(): Promise<void> {
    const consumer = this.consumer as Consumer;
    this.setState('running');
    this.log.info(`Forward worker started: ${this.label}`);
    let writing: Promise<void> | undefined;
    try {
      for (;;) {
        if (this.cfg.stopAtEnd && (await this.reachedEnd())) break;
        const batch = await this.collect(consumer);
        if (writing !== undefined) await writing;
        writing = undefined;
        if (batch === undefined) break;
        if (batch.read.length === 0) continue;
        writing = this.write(batch);
        // surface a halt at once; otherwise keep reading the next batch meanwhile
        writing.catch(() => undefined);
      }
      if (writing !== undefined) await writing;
    } catch (err) {
      this.setState('halted');
      this.log.error(`Forward worker halted: ${this.label}: ${errorMessage(err)}`);
      return;
    }
  }

  private async reachedEnd(): Promise<boolean> {
    if (this.ends === undefined) return false;
    const next = await (this.consumer as Consumer).nextPositions();
    for (const [p, end] of this.ends) if ((next.get(p) ?? 0n) < end) return false;
    return true;
  }

  /** Reads up to batch_size events, waiting at most batch_linger after the first. undefined = stop. */
  private async collect(consumer: Consumer): Promise<Batch | undefined> {
    const read: Event[] = [];
    const out: Outgoing[] = [];
    let deadline = Infinity;
    let readAt = 0;
    while (read.length < this.cfg.batchSize) {
      if (this.stopping) return read.length > 0 ? { read, out, readAt } : undefined;
      const timeout = deadline === Infinity ? 1000 : Math.max(0, deadline - performance.now());
      if (timeout === 0) break;
      const pending = consumer.pull();
      const e = await Promise.race([pending.wait(timeout), this.stopped]);
      if (e === STOP) return read.length > 0 ? { read, out, readAt } : undefined;
      if (e === undefined) {
        if (read.length > 0) break;
        if (this.cfg.stopAtEnd && (await this.reachedEnd())) return { read, out, readAt };
        continue;
      }
      if (e.id === NO_MORE_EVENTS) {
        this.stopping = true;
        break;
      }
      if (read.length === 0) {
        deadline = performance.now() + this.cfg.batchLingerMs;
        readAt = performance.now();
      }
      read.push(e);
      this.delivered.set(e.partitionIndex, e.id);
      this.metrics.received(e.partitionIndex);
      const o = await this.prepare(e);
      if (o !== undefined) out.push(o);
      if (this.cfg.stopAtEnd && this.ends !== undefined && (await this.reachedEnd())) break;
    }
    return { read, out, readAt };
  }

  /** Filters, provenance headers and partition mapping of one event (undefined = dropped). */
  private async prepare(e: Event): Promise<Outgoing | undefined> {
    const srcHeaders = e.headers;
    if (this.cfg.dropOwnOrigin && srcHeaders['diaspora-src']?.startsWith(this.dst.sourceId + '#')) {
      this.metrics.filtered('drop_own_origin');
      return undefined;
    }
    let metadata = e.metadata;
    let data = e.data;
    let headers: Record<string, string> | undefined;
    if (this.plugins.filters.length > 0) {
      const fe: ForwardEvent = {
        metadata,
        data,
        headers: { ...srcHeaders },
        source: { id: this.src.sourceId, partition: e.partitionIndex, eventId: e.id },
      };
      const r = await this.runFilters(fe);
      if ('droppedBy' in r) {
        this.metrics.filtered(r.droppedBy);
        return undefined;
      }
      metadata = r.metadata;
      data = r.data;
      headers = r.headers;
    }
    if (this.cfg.headers) {
      headers = { ...(headers ?? srcHeaders) };
      for (const k of Object.keys(headers)) if (k.startsWith('diaspora-')) delete headers[k];
      headers['diaspora-src'] = `${this.src.sourceId}#${e.partitionIndex}@${e.id}`;
      headers['diaspora-policy'] = this.cfg.name;
      headers['diaspora-ts'] = (BigInt(Date.now()) * 1_000_000n).toString();
    } else if (headers === undefined && Object.keys(srcHeaders).length > 0) headers = { ...srcHeaders };
    let partition: number | undefined;
    switch (this.mapping.kind) {
      case 'same':
        partition = e.partitionIndex;
        break;
      case 'fixed':
        partition = this.mapping.partition;
        break;
      case 'hash':
        partition = hashPartition(metadata, this.mapping.path, this.dst.partitions.length);
        break;
      case 'auto':
        partition = undefined;
    }
    return { event: e, metadata, data, headers, partition, bytes: data.size };
  }

  private async runFilters(fe: ForwardEvent): Promise<ForwardEvent | { droppedBy: string }> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await applyFilters(this.plugins.filters, fe);
      } catch (err) {
        this.metrics.error('process');
        if (attempt >= 3) {
          if (this.cfg.filterErrors === 'drop') {
            this.logError(`Filter failed, event dropped: ${errorMessage(err)}`);
            return { droppedBy: 'error' };
          }
          throw new DiasporaError(`Filter failed after ${attempt + 1} attempts: ${errorMessage(err)}`, { code: ErrorCodes.GENERIC });
        }
        this.metrics.retry('process');
        await this.backoff(attempt);
      }
    }
  }

  /** Writes a batch until every event is confirmed, then acknowledges the batch on the source. */
  private async write(batch: Batch): Promise<void> {
    const producer = this.producer as Producer;
    let pending = batch.out;
    const started = performance.now();
    this.unconfirmed += batch.read.length;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const futures: Future<EventID>[] = [];
      for (const o of pending) {
        if (!producer.hasCapacity()) {
          this.metrics.backpressure();
          await producer.ready();
        }
        futures.push(producer.push(o.metadata, o.data, { ...(o.partition !== undefined ? { partition: o.partition } : {}), ...(o.headers !== undefined ? { headers: o.headers } : {}) }));
      }
      const slow = setTimeout(() => this.log.warn(`Push timed out for ${this.label}`), 5000);
      const flushed = producer.flush().wait().then(
        () => undefined,
        (err: unknown) => err,
      );
      const results = await Promise.allSettled(futures.map((f) => f.wait()));
      await flushed;
      clearTimeout(slow);
      const firstFailure = results.findIndex((r) => r.status === 'rejected');
      const confirmed = firstFailure < 0 ? pending.length : firstFailure;
      for (let i = 0; i < confirmed; i++) this.metrics.sent((pending[i] as Outgoing).partition ?? 0, (pending[i] as Outgoing).bytes + (pending[i] as Outgoing).metadata.dump().length);
      if (firstFailure < 0) break;
      const err = (results[firstFailure] as PromiseRejectedResult).reason;
      pending = pending.slice(confirmed);
      this.metrics.error('send');
      this.logError(`Error in forward worker ${this.label}: ${errorMessage(err)}`);
      if (this.stopping) {
        throw new DiasporaError(`stopped with ${pending.length} unconfirmed event(s)`, { code: ErrorCodes.CLOSED });
      }
      this.setState('retrying');
      this.metrics.retry('send');
      await this.backoff(attempt);
      if (this.stopping) throw new DiasporaError(`stopped with ${pending.length} unconfirmed event(s)`, { code: ErrorCodes.CLOSED });
      this.setState('running');
    }
    // everything confirmed (or filtered): acknowledge in source order
    for (const e of batch.read) void e.acknowledge();
    this.unconfirmed -= batch.read.length;
    // persist positions on our own schedule: a busy pipeline delays the consumer's timers
    const t = performance.now();
    if (t - this.lastCommit >= this.cfg.checkpointIntervalMs) {
      this.lastCommit = t;
      void (this.consumer as Consumer).commit().catch((err: unknown) => {
        this.metrics.error('commit');
        this.logError(`Could not persist source positions of ${this.label}: ${errorMessage(err)}`);
      });
    }
    const now = performance.now();
    this.metrics.batch(batch.out.length, (now - started) / 1000, (now - batch.readAt) / 1000);
  }

  private async backoff(attempt: number): Promise<void> {
    const { minMs, maxMs, jitter } = this.cfg.retry;
    const base = Math.min(maxMs, minMs * 2 ** attempt);
    const ms = base * (1 + jitter * (Math.random() * 2 - 1));
    await Promise.race([new Promise((r) => setTimeout(r, ms)), this.stopped]);
  }

  /** Repeated identical errors are logged at most once per 10 s, with a repeat count. */
  private logError(msg: string): void {
    const now = performance.now();
    const last = this.lastErrorLog.get(msg);
    if (last === undefined || now - last >= 10_000) {
      this.lastErrorLog.set(msg, now);
      this.log.error(msg);
    }
  }

  /** Stops reading; the current batch is finished (or abandoned at the deadline by the daemon). */
  requestStop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.setState('stopping');
    this.stopSignal();
  }

  /** Events read but not confirmed (forwarded again after a restart). */
  get unconfirmedCount(): number {
    return this.unconfirmed;
  }

  /** Flushes, persists positions and closes the clients. */
  async close(): Promise<void> {
    this.log.info(`Flushing producer for ${this.cfg.to.ref}...`);
    await this.producer?.close().catch((err: unknown) => this.log.error(`Flush failed for ${this.cfg.to.ref}: ${errorMessage(err)}`));
    await this.consumer?.close().catch((err: unknown) => this.log.error(`Closing the source of ${this.label} failed: ${errorMessage(err)}`));
    for (const f of this.plugins.filters) await f.close?.();
    if (this.state !== 'halted') this.setState('stopped');
    this.log.info(`Forward worker stopped: ${this.label}`);
  }
}
