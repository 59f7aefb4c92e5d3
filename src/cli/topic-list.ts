/** `diaspora-ctl topic list [-v]` (diaspora-ctl.md §6): one line per topic, sorted by name. */
import { Driver } from '../api/driver.js';
import { dumpCompact } from '../api/json.js';
import { defaultContext, driverOptions, parseCommand, type CommandContext, type CommandSpec } from './command.js';
import { runtimeErrorText } from './errors.js';

export const spec: CommandSpec = {
  path: 'topic list',
  word: 'list',
  description: 'List topics, one per line (with -v: name and its JSON description).',
  dotted: ['driver'],
  ignoredDotted: ['topic', 'validator', 'serializer', 'partition-selector'],
  options: (cmd) =>
    cmd
      .requiredOption('--driver <type>', 'driver factory key')
      .option('--driver-config <file>', 'JSON file with driver options (merged with --driver.*)')
      .option('-v, --verbose', 'print each topic with its description'),
};

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const { opts, dotted, logger } = parsed;
  let driver: Driver | undefined;
  try {
    const dopts = driverOptions(opts, dotted);
    logger.debug(`Creating driver: ${String(opts['driver'])}`);
    driver = await Driver.create(opts['driver'] as string, dopts);
    const topics = await driver.listTopics();
    let text = '';
    for (const [name, desc] of topics) text += opts['verbose'] === true ? `${name} ${dumpCompact(desc)}\n` : `${name}\n`;
    ctx.out(text);
    return 0;
  } catch (err) {
    logger.error(runtimeErrorText(err));
    return 1;
  } finally {
    await driver?.close().catch(() => undefined);
  }
}
