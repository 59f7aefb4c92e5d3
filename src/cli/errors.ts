/**
 * Error classes of the `diaspora-ctl` command line (diaspora-ctl.md §1, §4).
 *
 * How the CLI reports each kind of error:
 *
 * | Thrown                 | Printed                                             | Exit |
 * |------------------------|-----------------------------------------------------|------|
 * | {@link CliParseError}  | stderr `PARSE ERROR: <message>` + brief usage line   | 1    |
 * | {@link ConfigFileOpenError} | log `[error] <message>` (no `Error: ` prefix)   | 1    |
 * | any other error        | log `[error] Error: <message>`                      | 1    |
 *
 * {@link runtimeErrorText} builds the text after `[error] ` for the last two rows.
 */
import { DiasporaError, ErrorCodes } from '../api/errors.js';

/**
 * A command-line parse error. The message does NOT contain the `PARSE ERROR: ` prefix; the caller prints
 * `PARSE ERROR: ${err.message}` followed by the brief usage line and exits 1.
 */
export class CliParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliParseError';
  }
}

/**
 * A `--driver-config` / `--topic-config` file that cannot be opened or read (diaspora-ctl.md §4). Its message is
 * `Failed to open config file: <file>` and, unlike other runtime errors, it is logged WITHOUT the `Error: `
 * prefix: `[error] Failed to open config file: <file>`. Use {@link runtimeErrorText} to get that right.
 */
export class ConfigFileOpenError extends DiasporaError {
  /** The path as given on the command line. */
  readonly file: string;

  constructor(file: string, options: { cause?: unknown } = {}) {
    super(`Failed to open config file: ${file}`, { code: ErrorCodes.CONFIG, cause: options.cause });
    this.name = 'ConfigFileOpenError';
    this.file = file;
  }
}

/**
 * The text to log at error level for a runtime error of `topic create` / `topic list` (after `[error] `):
 * the bare message for a {@link ConfigFileOpenError}, `Error: <message>` for everything else.
 */
export function runtimeErrorText(err: unknown): string {
  if (err instanceof ConfigFileOpenError) return err.message;
  return `Error: ${err instanceof Error ? err.message : String(err)}`;
}
