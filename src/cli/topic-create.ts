/** `diaspora-ctl topic create` (diaspora-ctl.md §5). */
import { Driver } from '../api/driver.js';
import { dumpCompact, isJsonObject, type JsonObject } from '../api/json.js';
import { defaultContext, driverOptions, parseCommand, type CommandContext, type CommandSpec } from './command.js';
import { loadJsonConfigFile, mergePatch } from './config-files.js';
import { runtimeErrorText } from './errors.js';

const COMPONENTS = [
  ['validator', 'validator'],
  ['serializer', 'serializer'],
  ['partition-selector', 'partitionSelector'],
] as const;

export const spec: CommandSpec = {
  path: 'topic create',
  word: 'create',
  description: 'Create a topic.',
  dotted: ['driver', 'topic', 'validator', 'serializer', 'partition-selector'],
  options: (cmd) =>
    cmd
      .requiredOption('--driver <type>', 'driver factory key: files, kafka, octopus, dafka, memory or name:module')
      .requiredOption('--name <topic>', 'topic name')
      .option('--driver-config <file>', 'JSON file with driver options (merged with --driver.*)')
      .option('--topic-config <file>', 'JSON file with topic options (merged with --topic.*)')
      .option('--validator <type>', 'validator type (configured by --validator.*)')
      .option('--serializer <type>', 'serializer type (configured by --serializer.*)')
      .option('--partition-selector <type>', 'partition selector type (configured by --partition-selector.*)'),
  helpAfter: 'Example: diaspora-ctl topic create --driver files --driver.root_path ./data --name t1 --topic.num_partitions 4',
};

export async function run(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  const parsed = parseCommand(spec, argv, ctx);
  if (typeof parsed === 'number') return parsed;
  const { opts, dotted, logger } = parsed;
  const type = opts['driver'] as string;
  const name = opts['name'] as string;
  let driver: Driver | undefined;
  try {
    const dopts = driverOptions(opts, dotted);
    const topicFile = opts['topicConfig'];
    const topicOpts = mergePatch(typeof topicFile === 'string' ? loadJsonConfigFile(topicFile) : {}, dotted.values.topic ?? {}) as JsonObject;
    const components: Record<string, JsonObject> = {};
    for (const [flag, key] of COMPONENTS) {
      const t = opts[key];
      const given = dotted.values[flag] ?? {};
      if (typeof t === 'string') components[key] = { ...(isJsonObject(given) ? given : {}), type: t };
      else if (dotted.given.has(flag)) logger.warn(`Ignoring --${flag}.* options: --${flag} not given`);
    }
    logger.info(`Creating driver: ${type}`);
    logger.debug(`Driver config: ${dumpCompact(dopts)}`);
    driver = await Driver.create(type, dopts);
    logger.info(`Creating topic: ${name}`);
    logger.debug(`Topic config: ${dumpCompact(topicOpts)}`);
    for (const [k, v] of Object.entries(components)) logger.debug(`${k} metadata: ${dumpCompact(v)}`);
    await driver.createTopic(name, { options: topicOpts, ...components });
    logger.info(`Topic '${name}' created successfully`);
    return 0;
  } catch (err) {
    logger.error(runtimeErrorText(err));
    return 1;
  } finally {
    await driver?.close().catch(() => undefined);
  }
}
