/**
 * A producer FIFO (diaspora-ctl.md §7.3): reads lines from a named pipe and pushes one event per line.
 *
 * * The daemon holds a keep-alive write descriptor (see {@link openFifoReader}), so the FIFO stays registered across
 *   any number of consecutive writers and the end of a writer is never an end-of-file.
 * * Back-pressure: while the producer has no capacity the socket is paused, so the kernel pipe fills up and the
 *   writer blocks; reading resumes after `await producer.ready()`.
 * * Lines: split on `\n`, a trailing `\r` removed, empty lines skipped; decoding errors and push failures are logged
 *   `Failed to push event: <message>` and later lines are still processed.
 */
import type { Producer } from '../api/producer.js';
import type { Logger } from '../cli/log.js';
import type { FifoReader } from './fifo-io.js';
import type { ProducerFifoOptions } from './fifo-options.js';
import { decodeProducerLine } from './formats.js';
import { ByteLineBuffer } from './line-buffer.js';

/** Where the lines of a producer FIFO go: replaced as a whole on re-registration. */
export interface ProducerSink {
  topic: string;
  producer: Producer;
  options: ProducerFifoOptions;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class ProducerBridge {
  private readonly lines = new ByteLineBuffer();
  /** Waiting for producer capacity. */
  private blocked = false;
  /** Identifies the current wait for capacity. */
  private blockSeq = 0;
  /** Reasons to keep the socket paused besides `blocked` (re-registration in progress). */
  private holds = 0;
  /** Set by {@link drain}: no more resuming, the rest is processed by drain itself. */
  private finishing = false;
  private ended = false;
  private readonly endWaiters: (() => void)[] = [];

  constructor(
    /** The path as written in the command. */
    readonly path: string,
    /** Whether the daemon created the FIFO (it is then removed at shutdown). */
    readonly created: boolean,
    private sink: ProducerSink,
    private readonly reader: FifoReader,
    private readonly logger: Logger,
  ) {
    const socket = reader.socket;
    socket.on('data', (chunk: Buffer) => {
      this.lines.push(chunk);
      this.pump();
    });
    const onEnd = (): void => {
      if (this.ended) return;
      this.ended = true;
      for (const w of this.endWaiters.splice(0)) w();
    };
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', (err) => {
      this.logger.error(`Read error on FIFO '${this.path}': ${messageOf(err)}`);
      onEnd();
    });
  }

  get topic(): string {
    return this.sink.topic;
  }

  get options(): ProducerFifoOptions {
    return this.sink.options;
  }

  /** Processes the complete lines buffered so far, until the producer runs out of capacity. */
  private pump(): void {
    if (this.blocked || this.finishing || this.holds > 0) return;
    for (;;) {
      const line = this.lines.next();
      if (line === undefined) return;
      this.handleLine(line);
      if (!this.sink.producer.hasCapacity()) {
        this.block();
        return;
      }
    }
  }

  private block(): void {
    this.blocked = true;
    const seq = ++this.blockSeq;
    this.reader.socket.pause();
    if (this.logger.enabled('trace')) this.logger.trace(`Producer FIFO '${this.path}': no capacity, reading paused`);
    void this.sink.producer.ready().then(() => {
      if (seq !== this.blockSeq) return; // superseded (re-registration)
      this.blocked = false;
      if (this.logger.enabled('trace')) this.logger.trace(`Producer FIFO '${this.path}': capacity available, reading resumed`);
      if (this.finishing) return;
      this.pump();
      if (!this.blocked && this.holds === 0) this.reader.socket.resume();
    });
  }

  private handleLine(raw: Buffer): void {
    let end = raw.length;
    if (end > 0 && raw[end - 1] === 0x0d) end--;
    if (end === 0) return;
    const line = raw.subarray(0, end);
    const { producer, options, topic } = this.sink;
    let decoded;
    try {
      decoded = decodeProducerLine(line, options.format);
    } catch (err) {
      this.logger.error(`Failed to push event: ${messageOf(err)}`);
      return;
    }
    producer.push(decoded.metadata, decoded.data).then(undefined, (err: unknown) => {
      this.logger.error(`Failed to push event: ${messageOf(err)}`);
    });
    if (this.logger.enabled('debug')) this.logger.debug(`Pushed to '${topic}': ${line.toString('utf8')}`);
  }

  /**
   * Re-registration with another topic or other options: reading pauses, the old producer is flushed and closed,
   * and the lines that follow go to the new sink (bytes already read are kept).
   */
  async replace(sink: ProducerSink): Promise<void> {
    this.holds++;
    this.reader.socket.pause();
    const old = this.sink;
    try {
      await old.producer.close();
    } catch (err) {
      this.logger.error(`Failed to flush producer for FIFO '${this.path}': ${messageOf(err)}`);
    } finally {
      this.sink = sink;
      this.blocked = false;
      this.blockSeq++;
      this.holds--;
    }
    if (this.finishing) return;
    this.pump();
    if (!this.blocked && this.holds === 0) this.reader.socket.resume();
  }

  /**
   * Shutdown, first part: reads what is already buffered in the FIFO and pushes it (a final unterminated line is
   * pushed as a line). Closing the keep-alive descriptor makes the socket end once the data is read (unless
   * another writer still has the FIFO open); gives up at `deadline` (a `performance.now()` time).
   */
  async drain(deadline: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadlineReached = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), Math.max(0, deadline - performance.now()));
    });
    try {
      this.reader.closeKeepAlive();
      if (!this.blocked && this.holds === 0) this.reader.socket.resume();
      if (!this.ended) {
        const ended = new Promise<'ended'>((resolve) => this.endWaiters.push(() => resolve('ended')));
        if ((await Promise.race([ended, deadlineReached])) === 'deadline') {
          this.logger.warn(`Stopped reading FIFO '${this.path}' at the shutdown deadline (a writer still has it open)`);
        }
      }
      this.finishing = true;
      // what the socket already read from the pipe but did not emit yet (paused by back-pressure): read() emits it
      // as 'data', which the handler adds to the line buffer
      while (!this.reader.socket.destroyed && this.reader.socket.read() !== null) {
        // emitted through 'data'
      }
      this.reader.destroy();
      for (;;) {
        if (!this.sink.producer.hasCapacity()) {
          await Promise.race([this.sink.producer.ready(), deadlineReached]);
          if (!this.sink.producer.hasCapacity()) {
            this.logger.warn(`Lines of FIFO '${this.path}' left unprocessed at the shutdown deadline`);
            break;
          }
        }
        const line = this.lines.next();
        if (line === undefined) {
          const rest = this.lines.takeRest();
          if (rest.length > 0) this.handleLine(rest);
          break;
        }
        this.handleLine(line);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Shutdown, second part: flushes and closes the producer. */
  async close(): Promise<void> {
    this.finishing = true;
    this.reader.destroy();
    try {
      await this.sink.producer.close();
    } catch (err) {
      this.logger.error(`Failed to flush producer for FIFO '${this.path}': ${messageOf(err)}`);
    }
  }
}
