/** `diaspora-ctl fifo` (diaspora-ctl.md §7): the daemon bridging named pipes (FIFOs) and topics. */
import { Driver } from '../api/driver.js';
import { dumpCompact } from '../api/json.js';
import { FifoDaemon } from '../fifo/daemon.js';
import { defaultContext, driverOptions, parseCommand, type CommandContext, type CommandSpec } from './command.js';
import { runtimeErrorText } from './errors.js';
import { createLogger, resolveLogStream } from './log.js';
import { onFatalError } from './process-guard.js';

export const spec: CommandSpec = {
  path: 'fifo',
  word: 'fifo',
  description: 'Run the daemon bridging named pipes (FIFOs) and topics.',
  dotted: ['driver'],
  ignoredDotted: ['topic', 'validator', 'serializer', 'partition-selector'],
  options: (cmd) =>
    cmd
      .requiredOption('--driver <type>', 'driver factory key: files, kafka, octopus, dafka, memory or name:module')
      .requiredOption('--control-file <path>', 'path of the control FIFO (created by the daemon)')
      .option('--driver-config <file>', 'JSON file with driver options (merged with --driver.*)'),
  helpAfter: [
    'Control commands (one per line, written to the control FIFO):',
    '  <fifo-path> -> <topic> [(key=value, ...)]   register a producer FIFO (options: format=raw|json|envelope, batch_size, linger_ms)',
    '  <fifo-path> <- <topic> [(key=value, ...)]   register a consumer FIFO, created beforehand with mkfifo',
    '                                              (options: format=raw|json|envelope, start=committed|earliest|latest)',
    'Example:',
    '  diaspora-ctl fifo --driver files --driver.root_path ./data --control-file ./ctl &',
    "  echo 'in -> t1' > ./ctl; echo hello > ./in",
  ].join('\n'),
};

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  let parsed: ReturnType<typeof parseCommand>;
  try {
    parsed = parseCommand(spec, argv, ctx);
  } catch (err) {
    // e.g. a dotted value such as `.` (`Invalid numeric value: .`): a runtime error, not a parse error
    createLogger({ stream: resolveLogStream(argv.includes('--log-stdout'), ctx.env) }).error(runtimeErrorText(err));
    return 1;
  }
  if (typeof parsed === 'number') return parsed;
  const { opts, dotted, logger } = parsed;
  const type = opts['driver'] as string;
  const controlPath = opts['controlFile'] as string;

  let driver: Driver;
  try {
    const dopts = driverOptions(opts, dotted);
    logger.debug(`Driver config: ${dumpCompact(dopts)}`);
    try {
      driver = await Driver.create(type, dopts);
    } catch (err) {
      logger.error(`Failed to create driver '${type}': ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  } catch (err) {
    logger.error(runtimeErrorText(err));
    return 1;
  }

  const daemon = new FifoDaemon({ driver, driverType: type, controlPath, logger });
  let signals = 0;
  let abandon: (code: number) => void = () => undefined;
  const abandoned = new Promise<number>((resolve) => {
    abandon = resolve;
  });
  const onSignal = (): void => {
    signals++;
    if (signals === 1) {
      logger.info('Received shutdown signal...');
      daemon.requestShutdown();
    } else {
      logger.warn('Received a second shutdown signal, exiting now');
      abandon(1);
    }
  };
  // installed before anything is created on disk (§7.1 step 2)
  for (const s of SIGNALS) process.on(s, onSignal);
  let fatal = false;
  const removeFatal = onFatalError(
    (m) => logger.critical(m),
    () => {
      fatal = true;
      daemon.requestShutdown();
    },
  );
  try {
    const code = await Promise.race([daemon.run(), abandoned]);
    return fatal ? 1 : code;
  } finally {
    // the listeners stay until the driver is closed: a signal during the teardown must not end the process by its
    // default action halfway through
    if (signals < 2) await driver.close().catch(() => undefined);
    for (const s of SIGNALS) process.off(s, onSignal);
    removeFatal();
  }
}
