/** `diaspora-ctl topic delete` (ours): removes a topic and all its events. */
import { Driver } from '../api/driver.js';
import { defaultContext, driverOptions, parseCommand, type CommandContext, type CommandSpec } from './command.js';
import { runtimeErrorText } from './errors.js';

export const spec: CommandSpec = {
  path: 'topic delete',
  word: 'delete',
  description: 'Delete a topic and all its events.',
  dotted: ['driver'],
  options: (cmd) =>
    cmd
      .requiredOption('--driver <type>', 'driver factory key')
      .requiredOption('--name <topic>', 'topic name')
      .option('--driver-config <file>', 'JSON file with driver options (merged with --driver.*)'),
};

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const { opts, dotted, logger } = parsed;
  let driver: Driver | undefined;
  try {
    driver = await Driver.create(opts['driver'] as string, driverOptions(opts, dotted));
    await driver.deleteTopic(opts['name'] as string);
    logger.info(`Topic '${String(opts['name'])}' deleted`);
    return 0;
  } catch (err) {
    logger.error(runtimeErrorText(err));
    return 1;
  } finally {
    await driver?.close().catch(() => undefined);
  }
}
