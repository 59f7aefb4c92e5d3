/** `diaspora-ctl forward --config x.yaml` (diaspora-ctl.md §8). */
import { createLogger } from './log.js';
import { defaultContext, parseCommand, type CommandContext, type CommandSpec } from './command.js';
import { configReference, loadForwardConfig } from '../forward/config.js';
import { runForwardDaemon } from '../forward/daemon.js';

export const spec: CommandSpec = {
  path: 'forward',
  word: 'forward',
  description: 'Run the forwarding daemon: one pipeline per policy of the YAML configuration.',
  dotted: [],
  options: (cmd) =>
    cmd
      .requiredOption('--config <file.yaml>', 'YAML configuration (drivers, forward policies)')
      .option('--stop-at-end', 'stop each policy once it reached the source end seen at start, then exit')
      .option('--check', 'validate the configuration and open every driver and topic, then exit 0/1'),
  helpAfter: `\n${configReference()}`,
};

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const { opts } = parsed;
  let logger = parsed.logger;
  const configPath = opts['config'] as string;
  // log_format: json switches the daemon's log lines to JSON objects
  try {
    if (loadForwardConfig(configPath).logFormat === 'json') {
      logger = createLogger({ level: logger.level, stream: logger.stream, format: 'json' });
    }
  } catch {
    // reported by the daemon with the reference message
  }
  return runForwardDaemon({
    configPath,
    stopAtEnd: opts['stopAtEnd'] === true,
    check: opts['check'] === true,
    logger,
  });
}
