/** `diaspora-ctl topic describe` (ours): the topic's description, partitions and event counts as JSON. */
import { dumpCompact, dumpPretty, isJsonObject, type JsonObject } from '../api/json.js';
import { defaultContext, parseCommand, withDriver, type CommandContext, type CommandSpec } from './command.js';

export const spec: CommandSpec = {
  path: 'topic describe',
  word: 'describe',
  description: 'Print a topic description as JSON: components, partitions and their event counts.',
  dotted: ['driver'],
  options: (cmd) =>
    cmd
      .requiredOption('--driver <type>', 'driver factory key')
      .requiredOption('--name <topic>', 'topic name')
      .option('--driver-config <file>', 'JSON file with driver options (merged with --driver.*)')
      .option('--pretty', 'indented JSON'),
};

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const name = parsed.opts['name'] as string;
  return withDriver(parsed, async (driver) => {
    const topic = await driver.openTopic(name);
    const listed = (await driver.listTopics()).get(name);
    const consumer = await topic.consumer('', { startFrom: 'latest' });
    const ends = await consumer.endPositions();
    await consumer.close();
    const desc: JsonObject = {
      ...(isJsonObject(listed) ? listed : {}),
      name,
      num_partitions: topic.partitions.length,
      validator: topic.validator.metadata().json,
      serializer: topic.serializer.metadata().json,
      partition_selector: topic.partitionSelector.metadata().json,
      partitions: topic.partitions.map((p, i) => ({ ...p, num_events: ends.get(i) ?? 0n })),
    };
    await topic.close();
    ctx.out((parsed.opts['pretty'] === true ? dumpPretty(desc) : dumpCompact(desc)) + '\n');
  });
}
