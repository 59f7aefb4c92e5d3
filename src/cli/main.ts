/**
 * diaspora-ctl entry point: dispatches `<command> [<action>]` to one module per command
 * (diaspora-ctl.md §1). Modules are imported lazily so `topic list` never loads the forwarder.
 */
import { createLogger, resolveLogStream } from './log.js';
import { defaultContext, stdoutWriteError, type CommandContext } from './command.js';
import type { Logger } from './log.js';

export interface CommandModule {
  run(argv: string[], ctx: CommandContext): Promise<number>;
}

const COMMANDS: Record<string, { description: string; load: () => Promise<CommandModule> }> = {
  'topic create': { description: 'Create a topic', load: () => import('./topic-create.js') },
  'topic list': { description: 'List topics (-v: with their description)', load: () => import('./topic-list.js') },
  'topic describe': { description: 'Describe one topic as JSON', load: () => import('./topic-describe.js') },
  'topic delete': { description: 'Delete a topic and its events', load: () => import('./topic-delete.js') },
  fifo: { description: 'Run the daemon bridging named pipes (FIFOs) and topics', load: () => import('./fifo.js') },
  forward: { description: 'Run the forwarding daemon configured by a YAML file', load: () => import('./forward.js') },
  produce: { description: 'Produce events from standard input (one per line)', load: () => import('./produce.js') },
  consume: { description: 'Print the events of a topic as JSON lines', load: () => import('./consume.js') },
  'bench produce': { description: 'Producer benchmark (events/s, MB/s)', load: () => import('./bench-produce.js') },
  'bench consume': { description: 'Consumer benchmark (events/s, MB/s)', load: () => import('./bench-consume.js') },
};

const GROUPS = new Set(Object.keys(COMMANDS).filter((k) => k.includes(' ')).map((k) => k.split(' ')[0] as string));

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length)) + 2;
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}${v.description}`);
  return [
    'Usage: diaspora-ctl <command> <action> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    "Use 'diaspora-ctl <command> [<action>] --help' for help on a command.",
    '',
  ].join('\n');
}

/** The usage of a command group (`topic --help`): its actions, like the top-level usage. */
export function groupUsage(group: string): string {
  const actions = Object.entries(COMMANDS)
    .filter(([k]) => k.startsWith(`${group} `))
    .map(([k, v]) => [k.slice(group.length + 1), v.description] as const);
  const width = Math.max(...actions.map(([a]) => a.length)) + 2;
  return [
    `Usage: diaspora-ctl ${group} <action> [options]`,
    '',
    'Actions:',
    ...actions.map(([a, d]) => `  ${a.padEnd(width)}${d}`),
    '',
    `Use 'diaspora-ctl ${group} <action> --help' for help on an action.`,
    '',
  ].join('\n');
}

let stdoutGuarded = false;

export async function main(argv: string[], ctx: CommandContext = defaultContext): Promise<number> {
  if (!stdoutGuarded) {
    // a reader of our output that leaves (`consume ... | head`) is not a crash: commands notice it through
    // ctx.out's result, and this listener keeps the stream's 'error' event (EPIPE) from being uncaught; other
    // write errors are reported below, once the command returned
    stdoutGuarded = true;
    process.stdout.on('error', () => undefined);
  }
  const logger = createLogger({ level: 'info', stream: resolveLogStream(argv.includes('--log-stdout'), ctx.env) });
  const code = await dispatch(argv, ctx, logger);
  const writeError = stdoutWriteError();
  if (writeError === undefined) return code;
  logger.error(`Error: write error on standard output: ${writeError.message}`);
  return 1;
}

async function dispatch(argv: string[], ctx: CommandContext, logger: Logger): Promise<number> {
  const [first, second] = argv;
  if (first === undefined) {
    ctx.out(usage());
    return 1;
  }
  if (first === '-h' || first === '--help') {
    ctx.out(usage());
    return 0;
  }
  let key = first;
  let rest = argv.slice(1);
  if (GROUPS.has(first)) {
    if (second === '-h' || second === '--help') {
      ctx.out(groupUsage(first));
      return 0;
    }
    if (second === undefined || second.startsWith('-')) {
      ctx.out(usage());
      process.stderr.write(`Error: '${first}' command requires an action\n`);
      return 1;
    }
    key = `${first} ${second}`;
    rest = argv.slice(2);
    if (COMMANDS[key] === undefined) {
      ctx.out(usage());
      logger.error(`Unknown ${first} action: ${second}`);
      return 1;
    }
  }
  const command = COMMANDS[key];
  if (command === undefined) {
    ctx.out(usage());
    logger.error(`Unknown command: ${first}`);
    return 1;
  }
  const mod = await command.load();
  return mod.run(rest, ctx);
}
