/**
 * `diaspora-ctl bench consume`: the consumer benchmark, with the flags and output of the reference's
 * `diaspora-consumer-benchmark` (diaspora-project/diaspora-stream-api, benchmarks/diaspora-consumer-benchmark.cpp).
 *
 * Pulls `-n` events from the beginning of the topic (an anonymous consumer: nothing is persisted, so every run reads
 * the same events) and reports events/s, plus MB/s (ours; MB = 2^20 bytes of metadata text + data actually read).
 * `-i/--data-interest` is the probability that an event's data is read at all and `-s/--data-selectivity` the
 * fraction of it that is read (src/bench/selector.ts): the selection is a real DataSelector, so the driver reads only
 * the selected bytes. If the topic holds fewer than n events the benchmark waits for more (e.g. from a producer running
 * at the same time) until `--timeout`.
 */
import { Option } from 'commander';
import { isNoMoreEvents, type Consumer } from '../api/consumer.js';
import { Driver } from '../api/driver.js';
import { dumpCompact } from '../api/json.js';
import type { ThreadPool } from '../api/thread-pool.js';
import type { TopicHandle } from '../api/topic.js';
import { closeWithin, cpuClock, Deadline, DEFAULT_TIMEOUT_S, DEFAULT_WARMUP_EVENTS, DEFAULT_WARMUP_ROUNDS, optionLines, Progress, resultLines, warmupRounds } from '../bench/common.js';
import { parseBatchSize, parseCount, parsePositive, parseRatio, parseSeconds } from './option-values.js';
import { makeBenchSelector, type SelectionMode } from '../bench/selector.js';
import { LoopProfiler } from '../bench/profile.js';
import { defaultContext, driverOptions, parseCommand, type CommandContext, type CommandSpec } from './command.js';
import { runtimeErrorText } from './errors.js';

export const spec: CommandSpec = {
  path: 'bench consume',
  word: 'consume',
  description:
    'Consumer benchmark (reference: diaspora-consumer-benchmark). Reads -n events from the beginning of the topic, ' +
    'prints the options, then "Throughput: <x> events/s" and "Bandwidth: <y> MB/s" (MB = 2^20 bytes of metadata + data read).',
  dotted: ['driver'],
  options: (cmd) =>
    cmd
      .requiredOption('-d, --driver <type>', 'driver to use: files, kafka, octopus, dafka, memory or name:module')
      .requiredOption('-t, --topic <topic>', 'topic to consume from')
      .option('-c, --driver-config <file>', 'JSON configuration file for the driver (merged with --driver.*)')
      .option('-n, --num-events <N>', 'number of events to receive', parseCount, 1000)
      .option('-p, --num-threads <N>', "threads of the consumer's pool (0: inline, no pool)", parseCount, 1)
      .option('-s, --data-selectivity <ratio>', 'proportion of the data of an event to read (between 0 and 1)', parseRatio, 1)
      .option('-i, --data-interest <ratio>', 'proportion of events for which to pull data (between 0 and 1)', parseRatio, 1)
      .option('-b, --batch-size <N>', 'consumer batch size ("adaptive" or an integer)', parseBatchSize, 'adaptive' as number | 'adaptive')
      .addOption(
        new Option('--selection <mode>', 'how -s selects: the first bytes (contiguous, like the reference) or evenly spread blocks (strided)')
          .choices(['contiguous', 'strided'])
          .default('contiguous'),
      )
      .option('--block-size <bytes>', 'approximate block size of --selection strided', parsePositive, 512)
      .option('--timeout <seconds>', 'give up (exit 1) after this many seconds; 0: no limit', parseSeconds, DEFAULT_TIMEOUT_S)
      .option('--warmup <n>', 'first read this many events (from the start of the topic, at most -n per round), not measured (JIT warm-up); 0: a cold run like the reference', parseCount, DEFAULT_WARMUP_EVENTS)
      .option('--warmup-rounds <k>', 'split the warm-up into k rounds, each with its own consumer', parsePositive, DEFAULT_WARMUP_ROUNDS)
      .option('--cpu-prof <file>', 'write a V8 CPU profile of the timed loop only to <file> (see bench/cpuprofile-top.mjs)'),
  helpAfter: 'Example: diaspora-ctl bench consume -d files --driver.root_path /tmp/data -t bench -n 100000 -i 0.5 -s 0.25',
};

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const { opts, dotted, logger } = parsed;
  const type = opts['driver'] as string;
  const name = opts['topic'] as string;
  const n = opts['numEvents'] as number;
  const numThreads = opts['numThreads'] as number;
  const interest = opts['dataInterest'] as number;
  const selectivity = opts['dataSelectivity'] as number;
  const mode = opts['selection'] as SelectionMode;
  const warmup = warmupRounds(opts['warmup'] as number, opts['warmupRounds'] as number, n);
  let driver: Driver | undefined;
  let topic: TopicHandle | undefined;
  let consumer: Consumer | undefined;
  let pool: ThreadPool | undefined;
  try {
    const dopts = driverOptions(opts, dotted);
    ctx.out(
      optionLines([
        ['Driver', type],
        ['Driver config file', typeof opts['driverConfig'] === 'string' ? (opts['driverConfig'] as string) : ''],
        ['Topic', name],
        ['Number of events', n],
        ['Number of threads', numThreads],
        ['Data interest', interest],
        ['Data selectivity', selectivity],
        ['Warm-up events', warmup.reduce((a, b) => a + b, 0)],
      ]).join('\n') + '\n',
    );
    logger.debug(`Driver config: ${dumpCompact(dopts)}`);
    driver = await Driver.create(type, dopts);
    topic = await driver.openTopic(name);
    pool = driver.makeThreadPool(numThreads);
    const selector = makeBenchSelector({ interest, selectivity, mode, blockSize: opts['blockSize'] as number });
    const consumerOptions = {
      startFrom: 'earliest' as const,
      threadPool: pool,
      batchSize: opts['batchSize'] as number | 'adaptive',
      ...(selector !== undefined ? { dataSelector: selector } : {}),
    };
    // warm-up: the same code path on the first events, not measured, in rounds with a consumer each (as for bench
    // produce: what only a new consumer runs would otherwise deoptimize the hot code in the measured run)
    for (const events of warmup) {
      const w = await topic.consumer('', consumerOptions);
      try {
        await consumeLoop(w, events, opts['timeout'] as number, new LoopProfiler(undefined));
      } finally {
        await w.close();
      }
    }
    // created before the clock starts, like the reference; it reads nothing until the first pull
    consumer = await topic.consumer('', consumerOptions);
    const r = await consumeLoop(consumer, n, opts['timeout'] as number, new LoopProfiler(opts['cpuProf'] as string | undefined));
    ctx.out(
      [...resultLines({ seconds: r.seconds, events: r.events, bytes: r.metadataBytes + r.dataBytes, cpu: r.cpu }), `Events with data: ${r.withData}`, `Data bytes read: ${r.dataBytes}`].join('\n') +
        '\n',
    );
    return 0;
  } catch (err) {
    logger.error(runtimeErrorText(err));
    return 1;
  } finally {
    await closeWithin(2000, consumer, pool, topic, driver);
  }
}

interface ConsumeResult {
  seconds: number;
  cpu: NodeJS.CpuUsage;
  events: number;
  withData: number;
  metadataBytes: number;
  dataBytes: number;
}

async function consumeLoop(consumer: Consumer, n: number, timeout: number, profiler: LoopProfiler): Promise<ConsumeResult> {
  let count = 0;
  let withData = 0;
  let metadataBytes = 0;
  let dataBytes = 0;
  const progress = new Progress(n, 'events');
  // one timer for the whole run: on expiry the consumer is closed, which rejects the pending pull
  const deadline = new Deadline(timeout, () => `${count}/${n} events received`, () => void consumer.close().catch(() => undefined));
  try {
    await profiler.start();
    const cpu = cpuClock();
    const start = performance.now();
    while (count < n) {
      let e;
      try {
        e = await consumer.pull().wait();
      } catch (err) {
        if (deadline.expired) throw deadline.error();
        throw err;
      }
      if (e === undefined) continue;
      if (isNoMoreEvents(e)) throw new Error(`The topic ended after ${count} of ${n} events`);
      count++;
      // the canonical JSON text's length: its size in bytes for ASCII metadata (e.g. the producer bench's), O(1)
      metadataBytes += e.metadata.storedLength || e.metadata.dump().length;
      const size = e.data.size;
      if (size > 0) {
        withData++;
        dataBytes += size;
      }
      progress.update(count);
    }
    const seconds = (performance.now() - start) / 1000;
    return { seconds, cpu: cpu(), events: count, withData, metadataBytes, dataBytes };
  } finally {
    await profiler.stop();
    progress.end();
    deadline.clear();
  }
}
