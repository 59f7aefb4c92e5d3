/**
 * A consumer FIFO (diaspora-ctl.md §7.4): writes one line per event of a topic into a named pipe.
 *
 * * While no reader has the FIFO open, opening it for writing fails with `ENXIO`: the bridge retries every 100 ms
 *   without pulling events and without a time limit, logging `Waiting for a reader on consumer FIFO '<path>'` once
 *   after 5 s of waiting.
 * * Writes are complete: the lines of the events available at once are written with one non-blocking `write(2)`,
 *   whose byte count tells exactly which lines are whole in the pipe; those events are acknowledged. The rest of a
 *   line the pipe could not take is written through the socket, which waits for the pipe to drain.
 * * When the reader goes away (`EPIPE`) the bridge logs `Reader closed consumer FIFO: <path>`, drops its
 *   descriptor, waits for the next reader and re-sends the unfinished event (and the ones after it) to it.
 * * Idle, it waits on the driver (a pull without timeout): no busy loop.
 */
import { isNoMoreEvents, type Consumer, type Event } from '../api/consumer.js';
import { sleep } from '../api/future.js';
import type { Logger } from '../cli/log.js';
import { errorReason, isEpipe, tryOpenFifoWriter, writeFully, writeNonBlocking, type FifoWriter } from './fifo-io.js';
import type { ConsumerFifoOptions } from './fifo-options.js';
import { encodeConsumerLine } from './formats.js';

export const READER_RETRY_MS = 100;
export const READER_WAIT_WARNING_MS = 5000;
/** Pause after a failed pull before the next one. */
const PULL_ERROR_BACKOFF_MS = 500;
/** Lines gathered for one write. */
const MAX_BATCH_BYTES = 64 * 1024;

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Line {
  event: Event;
  bytes: Buffer;
}

export class ConsumerBridge {
  private stopping = false;
  /** Aborted by {@link stop}. */
  private readonly abort = new AbortController();
  private writer: FifoWriter | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  /** Events pulled and not yet completely written, in order (kept across readers). */
  private readonly pending: Line[] = [];
  private pendingBytes = 0;
  /** A pull already waited on (claimed) that had no event yet. */
  private nextPull: Promise<Event | undefined> | undefined;

  constructor(
    /** The path as written in the command (also the consumer's name). */
    readonly path: string,
    readonly topic: string,
    private readonly consumer: Consumer,
    readonly options: ConsumerFifoOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => {
      this.logger.error(`Error in consumer for FIFO '${this.path}': ${messageOf(err)}`);
    });
  }

  /** Stops writing at once: lines not completely written are abandoned (their events are not acknowledged). */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.abort.abort();
    this.writer?.socket.destroy();
  }

  /** Stops, then closes the consumer (committing the acknowledged positions). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    await this.loop;
    try {
      await this.consumer.close();
    } catch (err) {
      this.logger.error(`Failed to close consumer for FIFO '${this.path}': ${messageOf(err)}`);
    }
    this.logger.info(`Consumer for FIFO '${this.path}' closed (FIFO file not removed)`);
  }

  /** `p`'s outcome, or undefined as soon as the bridge is stopped (listeners are removed either way). */
  private unlessStopped<T>(p: PromiseLike<T>): Promise<T | undefined> {
    const signal = this.abort.signal;
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise<T | undefined>((resolve, reject) => {
      const onAbort = (): void => resolve(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  /** Waits for a reader; undefined when stopping. */
  private async connect(): Promise<FifoWriter | undefined> {
    const since = performance.now();
    let warned = false;
    let lastError: string | undefined;
    while (!this.stopping) {
      try {
        const writer = tryOpenFifoWriter(this.path);
        if (writer !== undefined) {
          writer.socket.on('error', () => undefined); // reported through the write callbacks
          this.logger.info(`Consumer FIFO '${this.path}' opened successfully for writing`);
          return writer;
        }
        lastError = undefined;
      } catch (err) {
        const reason = errorReason(err);
        if (reason !== lastError) this.logger.error(`Failed to open consumer FIFO '${this.path}': ${reason}`);
        lastError = reason;
      }
      if (!warned && performance.now() - since >= READER_WAIT_WARNING_MS) {
        warned = true;
        this.logger.warn(`Waiting for a reader on consumer FIFO '${this.path}'`);
      }
      await sleep(READER_RETRY_MS, this.abort.signal);
    }
    return undefined;
  }

  private add(event: Event): void {
    if (isNoMoreEvents(event)) return;
    let text: string;
    try {
      text = encodeConsumerLine(event.metadata, event.data, this.options.format);
    } catch (err) {
      this.logger.error(`Failed to format event for consumer FIFO '${this.path}': ${messageOf(err)}`);
      event.acknowledge();
      return;
    }
    const bytes = Buffer.from(text, 'utf8');
    this.pending.push({ event, bytes });
    this.pendingBytes += bytes.length;
  }

  /** Waits (on the driver, as long as needed) until at least one event is pending. False when stopping. */
  private async waitForEvents(): Promise<boolean> {
    while (this.pending.length === 0) {
      if (this.stopping) return false;
      const p = this.nextPull ?? this.consumer.pull().wait();
      this.nextPull = undefined;
      let e: Event | undefined;
      try {
        e = await this.unlessStopped(p);
      } catch (err) {
        if (this.stopping) return false;
        this.logger.error(`Failed to pull event for consumer FIFO '${this.path}': ${messageOf(err)}`);
        await sleep(PULL_ERROR_BACKOFF_MS, this.abort.signal);
        continue;
      }
      if (e === undefined) return false;
      this.add(e);
    }
    return true;
  }

  /**
   * Adds the events the consumer can deliver at once (already fetched), up to {@link MAX_BATCH_BYTES}. A pull that
   * has to wait is kept for later, so no event is taken and left behind.
   */
  private async gatherAvailable(): Promise<void> {
    while (this.nextPull === undefined && this.pendingBytes < MAX_BATCH_BYTES && !this.stopping) {
      const f = this.consumer.pull();
      const p = f.wait();
      if (!f.completed()) {
        p.catch(() => undefined); // rejected when the consumer closes; handled where it is awaited
        this.nextPull = p;
        return;
      }
      let e: Event | undefined;
      try {
        e = await p;
      } catch {
        return; // reported by the next waitForEvents
      }
      if (e !== undefined) this.add(e);
    }
  }

  private acknowledgeFirst(): void {
    const line = this.pending.shift() as Line;
    this.pendingBytes -= line.bytes.length;
    line.event.acknowledge();
    if (this.logger.enabled('debug')) {
      this.logger.debug(`Wrote event to consumer FIFO '${this.path}': ${line.bytes.toString('utf8', 0, line.bytes.length - 1)}`);
    }
  }

  /** Writes pending lines to the current reader until stopping (true) or the reader is gone (false). */
  private async serve(writer: FifoWriter): Promise<boolean> {
    for (;;) {
      if (!(await this.waitForEvents())) return true;
      await this.gatherAvailable();
      if (this.stopping) return true;
      const batch = this.pending.length === 1 ? (this.pending[0] as Line).bytes : Buffer.concat(this.pending.map((l) => l.bytes), this.pendingBytes);
      let written: number;
      try {
        written = writeNonBlocking(writer.fd, batch);
      } catch (err) {
        this.readerGone(err);
        return false;
      }
      while (this.pending.length > 0 && written >= (this.pending[0] as Line).bytes.length) {
        written -= (this.pending[0] as Line).bytes.length;
        this.acknowledgeFirst();
      }
      if (this.pending.length === 0) continue;
      // the pipe is full: finish this line through the socket, which waits for the pipe to drain
      const first = this.pending[0] as Line;
      const outcome = await writeFully(writer.socket, written > 0 ? first.bytes.subarray(written) : first.bytes);
      if (this.stopping) return true;
      if (!outcome.ok) {
        this.readerGone(outcome.error);
        return false;
      }
      this.acknowledgeFirst();
    }
  }

  private readerGone(err: unknown): void {
    if (isEpipe(err)) this.logger.info(`Reader closed consumer FIFO: ${this.path}`);
    else this.logger.error(`Write error on consumer FIFO '${this.path}': ${messageOf(err)}`);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const writer = await this.connect();
      if (writer === undefined) return;
      this.writer = writer;
      try {
        if (await this.serve(writer)) return;
      } finally {
        writer.socket.destroy();
        this.writer = undefined;
      }
      // the next reader gets the unfinished event first
    }
  }
}
