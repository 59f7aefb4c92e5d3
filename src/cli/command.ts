/**
 * What every diaspora-ctl subcommand shares (diaspora-ctl.md §1–§4): a commander definition that
 * drives parsing, validation and `--help`; the reference's `PARSE ERROR:` and `--version`
 * outputs; `--logging`/`--log-stdout`; the dotted-option pre-pass; and building driver options
 * from `--driver-config` + `--driver.*`.
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { setLogSink } from '../api/logging.js';
import { Driver } from '../api/driver.js';
import type { JsonObject } from '../api/json.js';
import { isJsonObject } from '../api/json.js';
import { loadJsonConfigFile, mergePatch } from './config-files.js';
import { DOTTED_PREFIXES, extractDottedOptions, type DottedOptions, type DottedPrefix } from './dotted-options.js';
import { CliParseError, runtimeErrorText } from './errors.js';
import { createLogger, LOGGING_CHOICES, parseLogLevel, resolveLogStream, type Logger } from './log.js';

export interface CommandContext {
  /**
   * Writes command results (the only stdout output besides usage texts). Returns false when the output is gone
   * (the reader of a pipe left, or a write failed): a command that streams results stops then. main() tells the two
   * apart afterwards ({@link stdoutWriteError}).
   */
  out: (text: string) => boolean | void;
  env: NodeJS.ProcessEnv;
}

/**
 * Writes to a pipe or file are synchronous on Linux: a reader that left (EPIPE) shows at once as an errored stream
 * (the 'error' event that follows is absorbed by main()).
 */
function stdoutGone(): boolean {
  return process.stdout.destroyed || process.stdout.errored !== null;
}

/**
 * The error that made stdout fail, unless it is EPIPE: a reader that left (`consume | head`) is a normal end, but a
 * failed write (ENOSPC on a full disk, EIO, …) means the output is truncated and the command must fail.
 */
export function stdoutWriteError(): Error | undefined {
  const err = process.stdout.errored;
  if (err === null || (err as NodeJS.ErrnoException).code === 'EPIPE') return undefined;
  return err;
}

export const defaultContext: CommandContext = {
  out: (text) => {
    if (stdoutGone()) return false;
    process.stdout.write(text);
    return !stdoutGone();
  },
  env: process.env,
};

let cachedVersion: string | undefined;
export function packageVersion(): string {
  if (cachedVersion === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    cachedVersion = pkg.version;
  }
  return cachedVersion;
}

export interface CommandSpec {
  /** Full path, e.g. "topic create". */
  path: string;
  /** The word of `--version` output (`create`, `list`, `fifo`, `forward`, …). */
  word: string;
  description: string;
  /** Dotted prefixes this command accepts (others are parse errors). */
  dotted: readonly DottedPrefix[];
  /** Dotted prefixes accepted but ignored with a warning (reference compatibility). */
  ignoredDotted?: readonly DottedPrefix[];
  /** Declares the command's own options. */
  options(cmd: Command): void;
  /** Extra help text appended after the options. */
  helpAfter?: string;
}

export interface ParsedCommand {
  opts: Record<string, unknown>;
  args: string[];
  dotted: DottedOptions;
  logger: Logger;
}

/** Parses argv for a subcommand. Returns an exit code when parsing ends the command (help, version, error). */
export function parseCommand(spec: CommandSpec, argv: string[], ctx: CommandContext): ParsedCommand | number {
  const cmd = new Command(`diaspora-ctl ${spec.path}`)
    .description(spec.description)
    .helpOption('-h, --help', 'display this help and exit')
    .addOption(new Option('--logging <level>', 'log level').choices([...LOGGING_CHOICES, 'warning']).default('info'))
    .option('--log-stdout', 'write logs to stdout, like the reference (also DIASPORA_CTL_LOG_STDOUT=1)')
    .version(`\n${spec.word}  version: ${packageVersion()}\n`, '--version', 'display version information and exit')
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.out(s),
      writeErr: (s) => void process.stderr.write(s),
      outputError: () => undefined,
    });
  spec.options(cmd);
  const dottedHelp = spec.dotted.length > 0 ? `\nDotted options: ${spec.dotted.map((p) => `--${p}.<key> <value>`).join(', ')}` : '';
  cmd.addHelpText('after', dottedHelp + (spec.helpAfter !== undefined ? `\n${spec.helpAfter}` : ''));

  const brief = (): string => `Brief USAGE: ${cmd.name()} ${cmd.options.filter((o) => o.mandatory).map((o) => o.flags).join(' ')} [options]\nFor complete USAGE and HELP type: ${cmd.name()} --help\n`;
  let dotted: DottedOptions;
  try {
    dotted = extractDottedOptions(argv, [...spec.dotted, ...(spec.ignoredDotted ?? [])]);
  } catch (err) {
    if (err instanceof CliParseError) {
      process.stderr.write(`PARSE ERROR: ${err.message}\n${brief()}`);
      return 1;
    }
    // a dotted value that cannot be typed (e.g. "Invalid numeric value: .") is a runtime error
    createLogger({ level: 'info', stream: resolveLogStream(argv.includes('--log-stdout'), ctx.env) }).error(runtimeErrorText(err));
    return 1;
  }
  try {
    cmd.parse(dotted.rest, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return 0;
      process.stderr.write(`PARSE ERROR: ${err.message.replace(/^error: /, '')}\n${brief()}`);
      return 1;
    }
    throw err;
  }
  const opts = cmd.opts();
  const level = parseLogLevel(String(opts['logging'])) ?? 'info';
  const logger = createLogger({ level, stream: resolveLogStream(opts['logStdout'] === true, ctx.env) });
  setLogSink((lvl, msg) => logger.log(lvl, msg));
  for (const p of spec.ignoredDotted ?? []) {
    if (dotted.given.has(p)) logger.warn(`Ignoring --${p}.* options: not used by ${spec.path}`);
  }
  return { opts, args: cmd.args, dotted, logger };
}

/**
 * Runs a command body with the driver of `--driver` (+ options): a runtime error is logged as
 * `[error] Error: …` and gives exit code 1; the driver is always closed.
 */
export async function withDriver(parsed: ParsedCommand, body: (driver: Driver) => Promise<number | void>): Promise<number> {
  let driver: Driver | undefined;
  try {
    const options = driverOptions(parsed.opts, parsed.dotted);
    parsed.logger.debug(`Creating driver: ${String(parsed.opts['driver'])}`);
    driver = await Driver.create(parsed.opts['driver'] as string, options);
    return (await body(driver)) ?? 0;
  } catch (err) {
    parsed.logger.error(runtimeErrorText(err));
    return 1;
  } finally {
    await driver?.close().catch(() => undefined);
  }
}

/** Driver options: `--driver-config` file merged with the `--driver.*` dotted options (command line wins). */
export function driverOptions(opts: Record<string, unknown>, dotted: DottedOptions): JsonObject {
  const file = opts['driverConfig'];
  const base: JsonObject = typeof file === 'string' ? loadJsonConfigFile(file) : {};
  const merged = mergePatch(base, dotted.values.driver ?? {});
  return isJsonObject(merged) ? merged : {};
}

export { DOTTED_PREFIXES };
