/**
 * `diaspora-ctl bench produce`: the producer benchmark, with the flags and output of the reference's
 * `diaspora-producer-benchmark` (diaspora-project/diaspora-stream-api, benchmarks/diaspora-producer-benchmark.cpp).
 *
 * Pushes `-n` events of `-m` bytes of metadata and `-s` bytes of data with batches of `-b` events, calls flush every
 * `-f` events and once at the end, and reports events/s and MB/s (MB = 2^20 bytes; metadata + data bytes) measured on
 * the monotonic clock from the first push to the end of the final flush. The topic is created (with the `--topic.*`
 * options, e.g. `--topic.num_partitions 4`) when it does not exist.
 */
import { Option } from 'commander';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Driver } from '../api/driver.js';
import { dumpCompact, type JsonObject } from '../api/json.js';
import type { Metadata } from '../api/metadata.js';
import type { Producer } from '../api/producer.js';
import type { TopicHandle } from '../api/topic.js';
import type { ThreadPool } from '../api/thread-pool.js';
import {
  DataSource,
  Deadline,
  DEFAULT_TIMEOUT_S,
  DEFAULT_WARMUP_EVENTS,
  DEFAULT_WARMUP_ROUNDS,
  warmupRounds,
  makeMetadata,
  MAX_BENCH_DATA_SIZE,
  MAX_BENCH_METADATA_SIZE,
  metadataRingSize,
  metadataBytes,
  optionLines,
  Progress,
  Random,
  resultLines,
  closeWithin,
  cpuClock,
} from '../bench/common.js';
import { parseBatchSize, parseBytesUpTo, parseCount, parsePositive, parseSeconds } from './option-values.js';
import { LoopProfiler } from '../bench/profile.js';
import { defaultContext, driverOptions, parseCommand, type CommandContext, type CommandSpec } from './command.js';
import { runtimeErrorText } from './errors.js';

export const spec: CommandSpec = {
  path: 'bench produce',
  word: 'produce',
  description:
    'Producer benchmark (reference: diaspora-producer-benchmark). Pushes -n events of -m bytes of metadata and -s bytes of data, ' +
    'prints the options, then "Throughput: <x> events/s" and "Bandwidth: <y> MB/s" (MB = 2^20 bytes, metadata + data). ' +
    'Creates the topic (with --topic.* options) if it does not exist.',
  dotted: ['driver', 'topic'],
  options: (cmd) =>
    cmd
      .requiredOption('-d, --driver <type>', 'driver to use: files, kafka, octopus, dafka, memory or name:module')
      .requiredOption('-t, --topic <topic>', 'topic to produce to')
      .option('-c, --driver-config <file>', 'JSON configuration file for the driver (merged with --driver.*)')
      .option('-n, --num-events <N>', 'number of events to send', parseCount, 1000)
      .option('-s, --data-size <bytes>', 'size of the data in each event in bytes (at most 1 GiB)', parseBytesUpTo(MAX_BENCH_DATA_SIZE, '1 GiB'), 0)
      .option('-m, --metadata-size <bytes>', 'size of the metadata of each event in bytes (JSON text; at least 2, at most 16 MiB)', parseBytesUpTo(MAX_BENCH_METADATA_SIZE, '16 MiB'), 0)
      .option('-b, --batch-size <N>', 'number of events to batch together ("adaptive" also accepted)', parseBatchSize, 1 as number | 'adaptive')
      .option('-p, --num-threads <N>', 'threads of the producer\'s pool (0: inline, no pool)', parseCount, 1)
      .option('-f, --flush-interval <N>', 'number of events to push before calling flush', parsePositive, 1000)
      .addOption(new Option('--max-num-batches <N>', 'batches that may be queued or written at once (back-pressure)').argParser(parsePositive))
      .option('--timeout <seconds>', 'give up (exit 1) after this many seconds; 0: no limit', parseSeconds, DEFAULT_TIMEOUT_S)
      .option('--warmup <n>', 'first produce this many events to scratch topics (deleted after), not measured (JIT warm-up); 0: a cold run like the reference', parseCount, DEFAULT_WARMUP_EVENTS)
      .option('--warmup-rounds <k>', 'split the warm-up into k rounds, each with its own scratch topic and producer', parsePositive, DEFAULT_WARMUP_ROUNDS)
      .option('--cpu-prof <file>', 'write a V8 CPU profile of the timed loop only to <file> (see bench/cpuprofile-top.mjs)'),
  helpAfter:
    'Metadata of m >= 8 bytes is the JSON object {"p":"<m-8 random alphanumerics>"}; 2 <= m < 8: a JSON string of m bytes; m < 2: {}.\n' +
    'Example: diaspora-ctl bench produce -d files --driver.root_path /tmp/data -t bench -n 100000 -m 64 -s 4096 -b 128',
};

/** Ctrl+C (SIGINT) or SIGTERM during the warm-up: it stops in order, so the scratch topic is deleted. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`Interrupted by ${signal}`);
  }

  /** The exit code of a process ended by the signal (128 + its number), as a shell reports it. */
  get exitCode(): number {
    return this.signal === 'SIGINT' ? 130 : 143;
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Turns the first SIGINT/SIGTERM into an abort of `controller` (reason: {@link Interrupted}); the listeners are `once`,
 * so a second signal ends the process at once. Returns the function that removes them.
 */
function abortOnSignals(controller: AbortController): () => void {
  const onSignal = (sig: NodeJS.Signals): void => controller.abort(new Interrupted(sig));
  for (const s of SIGNALS) process.once(s, onSignal);
  return () => {
    for (const s of SIGNALS) process.off(s, onSignal);
  };
}

interface Settings {
  numEvents: number;
  dataSize: number;
  metadataSize: number;
  batchSize: number | 'adaptive';
  numThreads: number;
  flushInterval: number;
  maxNumBatches: number | undefined;
  timeout: number;
}

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const { opts, dotted, logger } = parsed;
  const type = opts['driver'] as string;
  const name = opts['topic'] as string;
  const s: Settings = {
    numEvents: opts['numEvents'] as number,
    dataSize: opts['dataSize'] as number,
    metadataSize: opts['metadataSize'] as number,
    batchSize: opts['batchSize'] as number | 'adaptive',
    numThreads: opts['numThreads'] as number,
    flushInterval: opts['flushInterval'] as number,
    maxNumBatches: opts['maxNumBatches'] as number | undefined,
    timeout: opts['timeout'] as number,
  };
  // capped at 64 MiB of events: a larger warm-up leaves enough dirty pages for writeback to throttle the measured run
  const warmup = warmupRounds(Math.min(opts['warmup'] as number, Math.floor((64 << 20) / Math.max(1, s.dataSize + s.metadataSize))), opts['warmupRounds'] as number);
  let driver: Driver | undefined;
  let topic: TopicHandle | undefined;
  let producer: Producer | undefined;
  let pool: ThreadPool | undefined;
  try {
    const dopts = driverOptions(opts, dotted);
    ctx.out(
      optionLines([
        ['Driver', type],
        ['Driver config file', typeof opts['driverConfig'] === 'string' ? (opts['driverConfig'] as string) : ''],
        ['Topic', name],
        ['Number of events', s.numEvents],
        ['Data size', s.dataSize],
        ['Metadata size', s.metadataSize],
        ['Batch size', s.batchSize],
        ['Number of threads', s.numThreads],
        ['Flush interval', s.flushInterval],
        ['Warm-up events', warmup.reduce((a, b) => a + b, 0)],
      ]).join('\n') + '\n',
    );
    if (s.metadataSize < 2) logger.warn(`Metadata size ${s.metadataSize} is below the smallest JSON value used ({}): events carry 2 bytes of metadata`);

    // prepare the events before the driver exists, like the reference
    const rng = new Random(0x5eed1234);
    const ring: Metadata[] = new Array<Metadata>(metadataRingSize(s.numEvents, s.metadataSize));
    for (let i = 0; i < ring.length; i++) ring[i] = makeMetadata(rng, s.metadataSize);
    const data = new DataSource(rng, s.dataSize);

    logger.debug(`Driver config: ${dumpCompact(dopts)}`);
    driver = await Driver.create(type, dopts);
    if (!(await driver.topicExists(name))) {
      const topicOpts: JsonObject = dotted.values.topic ?? {};
      logger.info(`Creating topic: ${name}`);
      await driver.createTopic(name, { options: topicOpts });
    } else if (dotted.given.has('topic')) {
      logger.warn(`Topic '${name}' exists: ignoring --topic.* options`);
    }
    pool = driver.makeThreadPool(s.numThreads);
    // warm-up: the same code path on scratch topics of the same driver, not measured, in rounds (like JMH's warm-up
    // iterations): each round's new topic and producer reach the code paths the measured run takes once (a first
    // append, a new loop) after the JIT optimized the rest, which otherwise deoptimize the hot code at the start of
    // the measured run
    if (warmup.length > 0) {
      // only while a scratch topic exists: elsewhere a signal ends the process at once, with nothing to clean up
      const interrupt = new AbortController();
      const unlisten = abortOnSignals(interrupt);
      try {
        for (const [k, events] of warmup.entries()) {
          interrupt.signal.throwIfAborted();
          const scratch = `${name}-warmup-${process.pid}-${k}`;
          try {
            await driver.createTopic(scratch, { options: dotted.values.topic ?? {} });
            const wt = await driver.openTopic(scratch);
            const wp = await wt.producer({ name: 'benchmark-warmup', batchSize: s.batchSize, threadPool: pool, ...(s.maxNumBatches !== undefined ? { maxNumBatches: s.maxNumBatches } : {}) });
            try {
              await produceLoop(wp, ring, data, { ...s, numEvents: events }, new LoopProfiler(undefined), interrupt.signal);
            } finally {
              await wp.close().catch(() => undefined);
              await wt.close().catch(() => undefined);
            }
          } finally {
            await driver.deleteTopic(scratch).catch((err: unknown) => logger.warn(`Could not delete warm-up topic ${scratch}: ${runtimeErrorText(err)}`));
          }
        }
      } finally {
        unlisten();
      }
      interrupt.signal.throwIfAborted(); // a signal during the clean-up stops the benchmark too
    }
    topic = await driver.openTopic(name);
    producer = await topic.producer({
      name: 'benchmark-producer',
      batchSize: s.batchSize,
      threadPool: pool,
      ...(s.maxNumBatches !== undefined ? { maxNumBatches: s.maxNumBatches } : {}),
    });

    const r = await produceLoop(producer, ring, data, s, new LoopProfiler(opts['cpuProf'] as string | undefined));
    ctx.out(resultLines({ seconds: r.seconds, events: s.numEvents, bytes: s.numEvents * (metadataBytes(s.metadataSize) + s.dataSize), cpu: r.cpu }).join('\n') + '\n');
    return 0;
  } catch (err) {
    if (err instanceof Interrupted) {
      logger.warn(err.message);
      return err.exitCode;
    }
    logger.error(runtimeErrorText(err));
    return 1;
  } finally {
    // after a timeout the producer may never drain: do not wait for it forever
    await closeWithin(2000, producer, pool, topic, driver);
  }
}

/** A promise rejected with the abort reason (handled: it only serves in races). */
function rejectOnAbort(signal: AbortSignal): Promise<never> {
  const p = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  p.catch(() => undefined);
  return p;
}

/**
 * Pushes `s.numEvents` events. With `interrupt` (the warm-up), the loop gives the event loop a turn at every flush so
 * that a signal is seen (the flushes may complete without one), and an abort ends it, even during a long flush.
 */
async function produceLoop(
  producer: Producer,
  ring: Metadata[],
  data: DataSource,
  s: Settings,
  profiler: LoopProfiler,
  interrupt?: AbortSignal,
): Promise<{ seconds: number; cpu: NodeJS.CpuUsage }> {
  const n = s.numEvents;
  const f = s.flushInterval;
  const ringSize = ring.length;
  let i = 0;
  const progress = new Progress(n, 'events');
  const deadline = new Deadline(s.timeout, () => `${i}/${n} events pushed`);
  const aborted = interrupt === undefined ? undefined : rejectOnAbort(interrupt);
  const wait = <T>(p: PromiseLike<T>): Promise<T> => deadline.race(aborted === undefined ? p : Promise.race([p, aborted]));
  try {
    await profiler.start();
    const cpu = cpuClock();
    const start = performance.now();
    for (; i < n; ) {
      if (deadline.expired) throw deadline.error();
      producer.push(ring[i % ringSize] as Metadata, data.slice(i));
      i++;
      if (i % f === 0) {
        await wait(producer.flush());
        if (interrupt !== undefined) await nextTurn();
        interrupt?.throwIfAborted();
      } else if (!producer.hasCapacity()) await wait(producer.ready());
      progress.update(i);
    }
    await wait(producer.flush()); // final flush: everything written
    const seconds = (performance.now() - start) / 1000;
    return { seconds, cpu: cpu() };
  } finally {
    await profiler.stop();
    progress.end();
    deadline.clear();
  }
}
