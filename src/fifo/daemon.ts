/**
 * The fifo daemon (diaspora-ctl.md §7): owns the control channel, the registered producer and consumer FIFOs, the
 * topic cache, and the shutdown sequence. Control commands are executed one at a time, in arrival order.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { NoDataSelector } from '../api/data-selection.js';
import type { Driver } from '../api/driver.js';
import type { TopicHandle } from '../api/topic.js';
import type { Logger } from '../cli/log.js';
import { describeCommand, parseControlLine, type FifoCommand, type ParseOutcome } from './command-parser.js';
import { ConsumerBridge } from './consumer-bridge.js';
import { ControlChannel, ControlFifoError, createControlFifo } from './control-channel.js';
import { errorReason, mkfifo, openFifoReader, pathKind } from './fifo-io.js';
import {
  resolveConsumerOptions,
  resolveProducerOptions,
  sameProducerOptions,
  type ProducerFifoOptions,
} from './fifo-options.js';
import { ProducerBridge, type ProducerSink } from './producer-bridge.js';

export interface FifoDaemonOptions {
  driver: Driver;
  /** The `--driver` value (logged as `Driver: <type>`). */
  driverType: string;
  controlPath: string;
  logger: Logger;
  /** Everything must be done this long after the shutdown request (default 4500 ms, under the 5 s of §7.5). */
  shutdownBudgetMs?: number;
  /** How long producer FIFOs are read for buffered data after the request (default 1500 ms). */
  drainBudgetMs?: number;
  /** How often consumers commit acknowledged positions (default 200 ms). */
  ackIntervalMs?: number;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function timer(ms: number): { promise: Promise<'timeout'>; cancel: () => void } {
  let t: NodeJS.Timeout | undefined;
  const promise = new Promise<'timeout'>((resolve) => {
    t = setTimeout(() => resolve('timeout'), Math.max(0, ms));
  });
  return { promise, cancel: () => clearTimeout(t) };
}

export class FifoDaemon {
  private readonly driver: Driver;
  private readonly logger: Logger;
  private readonly controlPath: string;
  private readonly topics = new Map<string, Promise<TopicHandle>>();
  /** Keyed by absolute path. */
  private readonly producers = new Map<string, ProducerBridge>();
  private readonly consumers = new Map<string, ConsumerBridge>();
  private control: ControlChannel | undefined;
  private controlCreated = false;
  private commands: Promise<void> = Promise.resolve();
  private shuttingDown = false;
  private shutdownRequestedAt: number | undefined;
  private onShutdownRequest: (() => void) | undefined;
  private readonly shutdownRequest: Promise<void>;

  constructor(private readonly o: FifoDaemonOptions) {
    this.driver = o.driver;
    this.logger = o.logger;
    this.controlPath = o.controlPath;
    this.shutdownRequest = new Promise<void>((resolve) => {
      this.onShutdownRequest = resolve;
    });
  }

  /** Asks the daemon to shut down (first SIGINT/SIGTERM). Idempotent. */
  requestShutdown(): void {
    if (this.shutdownRequestedAt !== undefined) return;
    this.shutdownRequestedAt = performance.now();
    this.onShutdownRequest?.();
  }

  /** Starts, serves commands until a shutdown request, shuts down. Resolves with the exit code. */
  async run(): Promise<number> {
    if (!(await this.startUp())) {
      this.removeControlFifo();
      return 1;
    }
    await this.shutdownRequest;
    return this.shutdown();
  }

  // -------------------------------------------------------------------------------------------
  // Start-up (§7.1 steps 3–5)

  private async startUp(): Promise<boolean> {
    const log = this.logger;
    log.info('Starting Diaspora FIFO daemon...');
    log.info(`Driver: ${this.o.driverType}`);
    log.info(`Control file: ${this.controlPath}`);
    try {
      await createControlFifo(this.controlPath);
      this.controlCreated = true;
      log.info(`Created control FIFO: ${this.controlPath}`);
      this.control = ControlChannel.open(
        this.controlPath,
        (line) => this.onControlLine(line),
        (err) => log.error(`Read error on control FIFO: ${messageOf(err)}`),
      );
    } catch (err) {
      log.error(err instanceof ControlFifoError ? err.message : `Failed to create control FIFO: ${errorReason(err)}`);
      return false;
    }
    log.info('Daemon is running. Waiting for commands on control file...');
    log.info('Send commands in format:');
    log.info('  Producer: <fifo-name> -> <topic-name> (key=value, ...)');
    log.info('  Consumer: <fifo-name> <- <topic-name> (key=value, ...)');
    log.info('Press Ctrl+C to stop.');
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Commands (§7.2–§7.4)

  private onControlLine(line: string): void {
    if (this.shuttingDown) return;
    const outcome = parseControlLine(line);
    if (outcome.kind === 'ignored') return;
    this.commands = this.commands.then(() => this.execute(outcome));
  }

  private async execute(outcome: Exclude<ParseOutcome, { kind: 'ignored' }>): Promise<void> {
    for (const w of outcome.warnings) this.logger.warn(w);
    if (outcome.kind !== 'command') return;
    const cmd = outcome.command;
    this.logger.info(describeCommand(cmd));
    if (this.shuttingDown) return;
    try {
      if (cmd.direction === 'producer') await this.registerProducer(cmd);
      else await this.registerConsumer(cmd);
    } catch (err) {
      const what = cmd.direction === 'producer' ? 'producer' : 'consumer';
      this.logger.error(`Failed to create ${what}: ${errorReason(err)}`);
    }
  }

  /** The cached topic handle (opened once per daemon; a failed open is retried by the next command). */
  private openTopic(name: string): Promise<TopicHandle> {
    let p = this.topics.get(name);
    if (p === undefined) {
      p = this.driver.openTopic(name);
      this.topics.set(name, p);
      p.catch(() => {
        if (this.topics.get(name) === p) this.topics.delete(name);
      });
    }
    return p;
  }

  private async createSink(cmd: FifoCommand, options: ProducerFifoOptions): Promise<ProducerSink | undefined> {
    try {
      const topic = await this.openTopic(cmd.topic);
      const producer = await topic.producer({ name: cmd.path, batchSize: options.batchSize, lingerMs: options.lingerMs });
      return { topic: cmd.topic, producer, options };
    } catch (err) {
      this.logger.error(`Failed to create producer: ${messageOf(err)}`);
      return undefined;
    }
  }

  private async registerProducer(cmd: FifoCommand): Promise<void> {
    const log = this.logger;
    const { options, warnings } = resolveProducerOptions(cmd.path, cmd.options);
    for (const w of warnings) log.warn(w);
    const key = resolvePath(cmd.path);
    if (key === resolvePath(this.controlPath)) {
      log.error(`Failed to create producer: '${cmd.path}' is the control FIFO`);
      return;
    }
    if (this.consumers.has(key)) {
      log.error(`Failed to create producer: '${cmd.path}' is already registered as a consumer FIFO`);
      return;
    }
    const existing = this.producers.get(key);
    if (existing !== undefined) {
      if (existing.topic === cmd.topic && sameProducerOptions(existing.options, options)) {
        log.warn(`FIFO '${cmd.path}' already registered`);
        return;
      }
      const sink = await this.createSink(cmd, options);
      if (sink === undefined) return;
      await existing.replace(sink);
      log.info(`Registered producer: ${cmd.path} -> ${cmd.topic}`);
      return;
    }
    const kind = pathKind(cmd.path);
    if (kind === 'other') {
      log.error(`Failed to create producer: '${cmd.path}' exists but is not a FIFO`);
      return;
    }
    const sink = await this.createSink(cmd, options);
    if (sink === undefined) return;
    let created = false;
    try {
      if (kind === 'missing') {
        await mkfifo(cmd.path);
        created = true;
        log.info(`Created FIFO: ${cmd.path}`);
      }
      const reader = openFifoReader(cmd.path);
      this.producers.set(key, new ProducerBridge(cmd.path, created, sink, reader, log));
    } catch (err) {
      log.error(`Failed to create producer: '${cmd.path}': ${errorReason(err)}`);
      await sink.producer.close().catch(() => undefined);
      if (created) this.unlinkQuietly(cmd.path);
      return;
    }
    log.info(`Registered producer: ${cmd.path} -> ${cmd.topic}`);
  }

  private async registerConsumer(cmd: FifoCommand): Promise<void> {
    const log = this.logger;
    const { options, warnings } = resolveConsumerOptions(cmd.path, cmd.options);
    for (const w of warnings) log.warn(w);
    const key = resolvePath(cmd.path);
    if (this.consumers.has(key)) {
      log.warn(`Consumer FIFO '${cmd.path}' already registered`);
      return;
    }
    if (key === resolvePath(this.controlPath)) {
      log.error(`Failed to create consumer: '${cmd.path}' is the control FIFO`);
      return;
    }
    if (this.producers.has(key)) {
      log.error(`Failed to create consumer: '${cmd.path}' is already registered as a producer FIFO`);
      return;
    }
    const kind = pathKind(cmd.path);
    if (kind === 'missing') {
      log.error(`Consumer FIFO '${cmd.path}' does not exist. Please create it first with mkfifo.`);
      return;
    }
    if (kind === 'other') {
      log.error(`'${cmd.path}' exists but is not a FIFO`);
      return;
    }
    let bridge: ConsumerBridge;
    try {
      const topic = await this.openTopic(cmd.topic);
      const consumer = await topic.consumer(cmd.path, {
        startFrom: options.start,
        dataSelector: options.format === 'envelope' ? undefined : NoDataSelector,
        ackIntervalMs: this.o.ackIntervalMs ?? 200,
      });
      bridge = new ConsumerBridge(cmd.path, cmd.topic, consumer, options, log);
    } catch (err) {
      log.error(`Failed to create consumer: ${messageOf(err)}`);
      return;
    }
    this.consumers.set(key, bridge);
    log.info(`Registered consumer: ${cmd.path} <- ${cmd.topic}`);
    bridge.start();
  }

  // -------------------------------------------------------------------------------------------
  // Shutdown (§7.5)

  private async shutdown(): Promise<number> {
    const requested = this.shutdownRequestedAt ?? performance.now();
    const budget = this.o.shutdownBudgetMs ?? 4500;
    const deadline = timer(requested + budget - performance.now());
    const outcome = await Promise.race([this.shutDownEverything(requested).then(() => 'done' as const), deadline.promise]);
    deadline.cancel();
    if (outcome === 'timeout') {
      this.logger.error('Shutdown did not complete in time; abandoning the remaining work');
      this.removeControlFifo();
      return 1;
    }
    return 0;
  }

  private async shutDownEverything(requested: number): Promise<void> {
    const log = this.logger;
    log.info('Shutting down daemon...');
    this.shuttingDown = true;
    this.control?.close();
    this.control = undefined;
    const drainDeadline = requested + (this.o.drainBudgetMs ?? 1500);
    // a registration in progress completes first, so its FIFO is shut down like the others
    const wait = timer(drainDeadline - performance.now());
    await Promise.race([this.commands, wait.promise]);
    wait.cancel();

    for (const c of this.consumers.values()) c.stop();
    await Promise.all([...this.producers.values()].map((p) => p.drain(drainDeadline)));
    for (const p of this.producers.values()) {
      log.info(`Closing and removing producer for FIFO: ${p.path}`);
      await p.close();
      if (p.created) {
        try {
          unlinkSync(p.path);
          log.info(`Removed FIFO file: ${p.path}`);
        } catch (err) {
          log.warn(`Failed to remove FIFO file '${p.path}': ${errorReason(err)}`);
        }
      }
    }
    this.producers.clear();
    for (const c of this.consumers.values()) await c.close();
    this.consumers.clear();
    this.removeControlFifo();
    for (const p of this.topics.values()) {
      try {
        await (await p).close();
      } catch {
        // failed opens were reported by their command
      }
    }
    this.topics.clear();
    await this.driver.close().catch((err: unknown) => log.error(`Failed to close driver: ${messageOf(err)}`));
  }

  private removeControlFifo(): void {
    this.control?.close();
    this.control = undefined;
    if (!this.controlCreated) return;
    this.controlCreated = false;
    // only a FIFO: what someone put at that path since (a regular file, a directory) is not ours to delete
    let isFifo = false;
    try {
      isFifo = lstatSync(this.controlPath).isFIFO();
    } catch {
      return; // already gone
    }
    if (isFifo) this.unlinkQuietly(this.controlPath);
    else this.logger.warn(`Not removing ${this.controlPath}: it is no longer a FIFO`);
  }

  private unlinkQuietly(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}
