/** `diaspora-ctl consume`: prints events as JSON lines (metadata, data size and base64 data). */
import type { EventID } from '../api/driver-spi.js';
import type { Driver } from '../api/driver.js';
import { errorMessage } from '../api/errors.js';
import { dumpCompact, type JsonObject } from '../api/json.js';
import { NoDataSelector } from '../api/data-selection.js';
import { isNoMoreEvents, type Consumer } from '../api/consumer.js';
import { defaultContext, parseCommand, withDriver, type CommandContext, type CommandSpec } from './command.js';
import { parseCount } from './option-values.js';

export const spec: CommandSpec = {
  path: 'consume',
  word: 'consume',
  description: 'Print the events of a topic, one JSON object per line: {"partition","id","metadata","data_size","data"}.',
  dotted: ['driver'],
  options: (cmd) =>
    cmd
      .requiredOption('--driver <type>', 'driver factory key')
      .requiredOption('--name <topic>', 'topic name')
      .option('--driver-config <file>', 'JSON file with driver options (merged with --driver.*)')
      .option('--group <name>', 'consumer name: positions are committed and a later run continues after them')
      .option('--from-beginning', 'start at the first event (default: the committed position with --group, else the end)')
      .option('--follow', 'keep waiting for new events (stop with Ctrl+C); default: stop at the end')
      .option('--max <n>', 'stop after n events', parseCount)
      .option('--no-data', 'do not read event data (only its size is unknown then: data_size is omitted)'),
};

/**
 * Without --follow: how long consume waits for the next event short of the end before it gives up (exit 1): only a
 * source that stalls gets there, it is far longer than reading one large event takes.
 */
const IDLE_LIMIT_MS = 30_000;

/**
 * Without --follow, consume reads until every partition reached the end it had at start. Positions start where the
 * consumer starts (committed, earliest or latest) and move with each event read; they are refreshed from the
 * consumer when a pull waits (a group's partitions become known once assigned).
 */
class EndTracker {
  private lastProgress = Date.now();

  private constructor(
    private readonly ends: Map<number, EventID>,
    private readonly next: Map<number, EventID>,
  ) {}

  static async start(consumer: Consumer): Promise<EndTracker> {
    return new EndTracker(await consumer.endPositions(), await consumer.nextPositions());
  }

  read(partition: number, id: EventID): void {
    this.next.set(partition, id + 1n);
    this.lastProgress = Date.now();
  }

  async refresh(consumer: Consumer): Promise<void> {
    for (const [p, id] of await consumer.nextPositions()) if (id > (this.next.get(p) ?? -1n)) this.next.set(p, id);
  }

  done(): boolean {
    return [...this.ends].every(([p, end]) => end === 0n || (this.next.get(p) ?? 0n) >= end);
  }

  /** The error to stop with once nothing came for IDLE_LIMIT_MS, else undefined. */
  stalled(count: number): Error | undefined {
    if (Date.now() - this.lastProgress < IDLE_LIMIT_MS) return undefined;
    const short = [...this.ends]
      .filter(([p, end]) => end > 0n && (this.next.get(p) ?? 0n) < end)
      .map(([p, end]) => `partition ${p} at ${this.next.get(p) ?? 0n} of ${end}`);
    return new Error(`No event for ${IDLE_LIMIT_MS / 1000} s before the end of the topic (${short.join(', ')}): stopped after ${count} event(s)`);
  }
}

/**
 * Whether the topic no longer exists. Only a definite answer counts: a failed or slow check (more than 1 s, e.g. a
 * broker that does not answer) is taken as "still there", so it neither ends consume nor delays Ctrl+C.
 */
async function topicGone(driver: Driver, name: string): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 1000)));
  try {
    const exists = Promise.resolve().then(() => driver.topicExists(name));
    return await Promise.race([exists.then((x) => !x, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const { opts } = parsed;
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return withDriver(parsed, async (driver) => {
    const name = opts['name'] as string;
    const topic = await driver.openTopic(name);
    const group = typeof opts['group'] === 'string' ? (opts['group'] as string) : '';
    const startFrom = opts['fromBeginning'] === true ? 'earliest' : group !== '' ? 'committed' : 'latest';
    const withData = opts['data'] !== false;
    const consumer = await topic.consumer(group, { startFrom, ackIntervalMs: 200, ...(withData ? {} : { dataSelector: NoDataSelector }) });
    const max = typeof opts['max'] === 'number' ? (opts['max'] as number) : Infinity;
    const follow = opts['follow'] === true;
    const ends = follow ? undefined : await EndTracker.start(consumer);
    let count = 0;
    let out = '';
    // events are acknowledged once their lines are written: a reader that leaves does not lose them for the group
    let written: { acknowledge(): unknown }[] = [];
    let outputGone = false;
    const flush = (): void => {
      if (out.length === 0) return;
      if (ctx.out(out) === false) outputGone = true;
      else for (const e of written) void e.acknowledge();
      out = '';
      written = [];
    };
    try {
      while (count < max && !stop.signal.aborted && ends?.done() !== true && !outputGone) {
        const e = await consumer.pull().wait(1000);
        if (e === undefined) {
          flush();
          await ends?.refresh(consumer);
          const stalled = ends?.stalled(count);
          if (stalled !== undefined) throw stalled;
          // following a topic deleted meanwhile would wait forever without a word
          if (follow && (await topicGone(driver, name))) throw new Error(`Topic ${name} was deleted`);
          continue;
        }
        if (isNoMoreEvents(e)) break;
        ends?.read(e.partitionIndex, e.id);
        let line: string;
        try {
          const rec: JsonObject = { partition: e.partitionIndex, id: e.id, metadata: e.metadata.json };
          if (withData) {
            const data = e.data.toBuffer();
            rec['data_size'] = data.length;
            rec['data'] = data.toString('base64');
          }
          line = dumpCompact(rec) + '\n';
        } catch (err) {
          throw new Error(`Event ${e.id} of partition ${e.partitionIndex}: ${errorMessage(err)}`, { cause: err });
        }
        out += line;
        written.push(e);
        if (out.length > 65536) flush();
        count++;
      }
    } catch (err) {
      // the events read before a failure are still printed (and acknowledged)
      flush();
      throw err;
    }
    flush();
    if (outputGone) parsed.logger.debug('The output was closed: stopping');
    await consumer.close();
    await topic.close();
  }).finally(() => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });
}
