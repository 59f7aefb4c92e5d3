/** `diaspora-ctl topic list [-v]` (diaspora-ctl.md §6): one line per topic, sorted by name. */
import { dumpCompact } from '../api/json.js';
import { defaultContext, parseCommand, withDriver, type CommandContext, type CommandSpec } from './command.js';

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
  return withDriver(parsed, async (driver) => {
    let text = '';
    for (const [name, desc] of await driver.listTopics()) text += parsed.opts['verbose'] === true ? `${name} ${dumpCompact(desc)}\n` : `${name}\n`;
    ctx.out(text);
  });
}
