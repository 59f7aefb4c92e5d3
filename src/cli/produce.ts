/** `diaspora-ctl produce`: one event per line of standard input. */
import { fstatSync, readFileSync } from 'node:fs';
import { errorMessage } from '../api/errors.js';
import type { EventID } from '../api/driver-spi.js';
import type { Future } from '../api/future.js';
import { defaultContext, parseCommand, withDriver, type CommandContext, type CommandSpec } from './command.js';
import { decodeProducerLine } from '../fifo/formats.js';
import { FIFO_FORMATS, type FifoFormat } from '../fifo/fifo-options.js';
import { ByteLineBuffer } from '../fifo/line-buffer.js';
import { parseBatchSize, parseCount } from './option-values.js';
import { Option } from 'commander';

export const spec: CommandSpec = {
  path: 'produce',
  word: 'produce',
  description: 'Produce one event per line of standard input.',
  dotted: ['driver'],
  options: (cmd) =>
    cmd
      .requiredOption('--driver <type>', 'driver factory key')
      .requiredOption('--name <topic>', 'topic name')
      .option('--driver-config <file>', 'JSON file with driver options (merged with --driver.*)')
      .addOption(new Option('--format <format>', 'raw: the line is the metadata string; json: the line is JSON metadata; envelope: {"metadata":…,"data":"<base64>"}').choices(FIFO_FORMATS).default('raw'))
      .option('--data-file <file>', 'attach the bytes of this file as the data of every event')
      .option('--partition <n>', 'push every event to this partition (default: the topic\'s partition selector)', parseCount)
      .option('--batch-size <n>', 'events per batch: an integer >= 1 or "adaptive"', parseBatchSize, 'adaptive' as number | 'adaptive'),
  helpAfter: 'Lines are UTF-8 (a trailing \\r is dropped). Invalid lines (bad UTF-8 or JSON, refused metadata) are reported on stderr and skipped; the exit code is 1 if any line failed.',
};

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const { opts, logger } = parsed;
  let failures = 0;
  let invalid = 0;
  const dataFile = opts['dataFile'];
  return withDriver(parsed, async (driver) => {
    let fileData: Buffer | undefined;
    if (typeof dataFile === 'string') {
      try {
        fileData = readFileSync(dataFile);
      } catch (err) {
        // e.g. a directory: Node's EISDIR message does not say which file
        throw new Error(`Cannot read --data-file ${dataFile}: ${errorMessage(err)}`, { cause: err });
      }
    }
    // Node gives a directory on stdin as an empty stream: that would be a silent "Produced 0 event(s)"
    if (fstatSync(0).isDirectory()) throw new Error('Cannot read standard input: it is a directory');
    const topic = await driver.openTopic(opts['name'] as string);
    const producer = await topic.producer({ batchSize: opts['batchSize'] as number | 'adaptive' });
    const partition = opts['partition'] as number | undefined;
    if (partition !== undefined && partition >= topic.partitions.length) {
      await producer.close();
      await topic.close();
      logger.error(`--partition ${partition}: topic ${String(opts['name'])} has ${topic.partitions.length} partition(s)`);
      return 1;
    }
    const format = opts['format'] as FifoFormat;
    const pending = new Set<Future<EventID>>();
    let lineNo = 0;
    let count = 0;
    // Ctrl+C / SIGTERM: stop reading, but write what was pushed (the lines already read from stdin go on to the
    // producer), then exit 130 / 143. A second signal ends the process at once (the handlers are one-shot).
    let interrupted: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      interrupted = signal;
      process.stdin.destroy();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      for await (let line of stdinLines()) {
        lineNo++;
        if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
        if (line.length === 0) continue;
        let decoded;
        try {
          // strict UTF-8, as the fifo daemon: a bad byte is reported, not replaced with U+FFFD
          decoded = decodeProducerLine(line, format);
        } catch (err) {
          invalid++;
          logger.error(`Line ${lineNo}: ${errorMessage(err)}`);
          continue;
        }
        if (!producer.hasCapacity()) await producer.ready();
        const n = lineNo;
        const f = producer.push(decoded.metadata, decoded.data ?? fileData, partition === undefined ? {} : { partition });
        pending.add(f);
        f.then(
          () => pending.delete(f),
          (err: unknown) => {
            pending.delete(f);
            failures++;
            logger.error(`Line ${n}: ${errorMessage(err)}`);
          },
        );
        count++;
      }
    } catch (err) {
      // stdin destroyed by the signal handler: the end of the input, not an error
      if (interrupted === undefined) throw err;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    await producer.close().catch(() => undefined);
    await Promise.allSettled([...pending].map((f) => f.wait()));
    const bad = failures + invalid;
    logger.info(`Produced ${count - failures} event(s) to ${String(opts['name'])}${bad > 0 ? `, ${bad} line(s) failed` : ''}`);
    await topic.close();
    if (interrupted !== undefined) {
      logger.warn(`Interrupted by ${interrupted}`);
      return interrupted === 'SIGINT' ? 130 : 143;
    }
    return bad > 0 ? 1 : 0;
  });
}

/** The lines of standard input as bytes, without their `\n`; a final unterminated line included. */
async function* stdinLines(): AsyncGenerator<Buffer> {
  const lines = new ByteLineBuffer();
  for await (const chunk of process.stdin) {
    lines.push(chunk as Buffer);
    for (let line = lines.next(); line !== undefined; line = lines.next()) yield line;
  }
  const rest = lines.takeRest();
  if (rest.length > 0) yield rest;
}
