/** `diaspora-ctl topic delete` (ours): removes a topic and all its events. */
import { defaultContext, parseCommand, withDriver, type CommandContext, type CommandSpec } from './command.js';

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
  const name = parsed.opts['name'] as string;
  return withDriver(parsed, async (driver) => {
    await driver.deleteTopic(name);
    parsed.logger.info(`Topic '${name}' deleted`);
  });
}
