/**
 * The control-command grammar of the fifo daemon (diaspora-ctl.md §7.2), as pure functions:
 *
 * ```
 * command = fifo-path " -> " topic [ "(" options ")" ]     ; register a producer FIFO
 *         | fifo-path " <- " topic [ "(" options ")" ]     ; register a consumer FIFO
 * options = [ pair { "," pair } ]      pair = key "=" value
 * ```
 *
 * Nothing here logs: warnings are returned as message texts (without the `[warning] ` prefix) in the order the
 * reference logs them, and the caller logs them.
 */

export type FifoDirection = 'producer' | 'consumer';

/** One accepted control command. */
export interface FifoCommand {
  direction: FifoDirection;
  /** The FIFO path, trimmed, as written (relative paths are relative to the daemon's working directory). */
  path: string;
  topic: string;
  /** key → value in first-appearance order; a repeated key keeps its first position and takes the last value. */
  options: Map<string, string>;
}

export type ParseOutcome =
  /** Blank line or comment (`#…`): nothing to do, nothing to log. */
  | { kind: 'ignored' }
  | { kind: 'command'; command: FifoCommand; warnings: string[] }
  /** The warnings end with `Invalid command format: '<line>'`. */
  | { kind: 'invalid'; warnings: string[] };

const TRIM_CHARS = ' \t\r\n';

/** Removes spaces, tabs, CR and LF (only those) from both ends. */
export function trimCommandText(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && TRIM_CHARS.includes(s[a] as string)) a++;
  while (b > a && TRIM_CHARS.includes(s[b - 1] as string)) b--;
  return s.slice(a, b);
}

export const PRODUCER_ARROW = ' -> ';
export const CONSUMER_ARROW = ' <- ';

/**
 * Parses one control line (already split on `\n`; it may still end with `\r`).
 *
 * Rules (reference-compatible): the first ` -> ` makes a producer command; only if there is none, the first ` <- `
 * makes a consumer command; neither → invalid. The path is the trimmed text before the arrow, the rest is trimmed.
 * If the rest contains `(`, the topic is the trimmed text before it and the options are the text up to the next
 * `)` (none → `Missing closing parenthesis in command`, invalid); text after `)` is ignored. Options are split on
 * `,`, each item trimmed and split at its first `=` into trimmed key and value; an empty key is ignored; an item
 * without `=` → `Invalid key-value pair (missing '='): '<item>'`. An empty path or topic → invalid.
 */
export function parseControlLine(line: string): ParseOutcome {
  const trimmed = trimCommandText(line);
  if (trimmed === '' || trimmed.startsWith('#')) return { kind: 'ignored' };
  const warnings: string[] = [];
  const invalid = (): ParseOutcome => {
    warnings.push(`Invalid command format: '${line}'`);
    return { kind: 'invalid', warnings };
  };

  let direction: FifoDirection = 'producer';
  let arrow = line.indexOf(PRODUCER_ARROW);
  if (arrow < 0) {
    direction = 'consumer';
    arrow = line.indexOf(CONSUMER_ARROW);
  }
  if (arrow < 0) return invalid();

  const path = trimCommandText(line.slice(0, arrow));
  const rest = trimCommandText(line.slice(arrow + PRODUCER_ARROW.length));
  const options = new Map<string, string>();
  let topic: string;
  const open = rest.indexOf('(');
  if (open >= 0) {
    topic = trimCommandText(rest.slice(0, open));
    const close = rest.indexOf(')', open);
    if (close < 0) {
      warnings.push('Missing closing parenthesis in command');
      return invalid();
    }
    const text = trimCommandText(rest.slice(open + 1, close));
    if (text !== '') {
      for (const raw of splitOptionItems(text)) {
        const item = trimCommandText(raw);
        const eq = item.indexOf('=');
        if (eq < 0) {
          warnings.push(`Invalid key-value pair (missing '='): '${item}'`);
          continue;
        }
        const key = trimCommandText(item.slice(0, eq));
        const value = trimCommandText(item.slice(eq + 1));
        if (key !== '') options.set(key, value);
      }
    }
  } else {
    topic = rest;
  }
  if (path === '' || topic === '') return invalid();
  return { kind: 'command', command: { direction, path, topic, options }, warnings };
}

/**
 * Splits the option text on `,` like C++ `std::getline(ss, item, ',')`: a trailing empty item (text ending with
 * `,`) is not produced, empty items elsewhere are.
 */
function splitOptionItems(text: string): string[] {
  const items = text.split(',');
  if (items.length > 1 && items[items.length - 1] === '') items.pop();
  return items;
}

/** `Received command: '<path>' -> '<topic>'`, plus ` (k=v, …)` when options were given. */
export function describeCommand(c: FifoCommand): string {
  const arrow = c.direction === 'producer' ? '->' : '<-';
  let text = `Received command: '${c.path}' ${arrow} '${c.topic}'`;
  if (c.options.size > 0) text += ` (${[...c.options].map(([k, v]) => `${k}=${v}`).join(', ')})`;
  return text;
}

/**
 * Longest control command kept (a command is a FIFO path, a topic name and a few options). A longer line is
 * dropped as it arrives: keeping it would cost memory and time without bound (one writer that never sends a
 * newline), and no command is that long.
 */
export const MAX_COMMAND_LINE = 64 * 1024;

/**
 * Accumulates control-FIFO text and yields complete lines (split on `\n`, without it). The text of an unfinished
 * line is kept until its `\n` arrives.
 */
export class CommandLineSplitter {
  private pending = '';
  /** Inside a line that was too long: everything up to its newline is dropped. */
  private skipping = false;
  /** Lines dropped for being longer than {@link MAX_COMMAND_LINE}; the reader reports and resets it. */
  dropped = 0;

  /** Appends text and returns the lines it completes. */
  push(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const piece = text.slice(start, nl);
      if (this.skipping) this.skipping = false;
      else if (this.pending.length + piece.length > MAX_COMMAND_LINE) this.dropped++;
      else lines.push(this.pending + piece);
      this.pending = '';
      start = nl + 1;
    }
    const rest = text.slice(start);
    if (this.skipping) return lines;
    if (this.pending.length + rest.length > MAX_COMMAND_LINE) {
      this.pending = '';
      this.skipping = true;
      this.dropped++;
    } else this.pending += rest;
    return lines;
  }

  /** The unfinished line (possibly empty). */
  get rest(): string {
    return this.pending;
  }
}
