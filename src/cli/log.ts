/**
 * The `diaspora-ctl` logger (diaspora-ctl.md §2).
 *
 * Line format: `[YYYY-MM-DD HH:MM:SS.mmm] [<level>] <message>` in local time (the reference's spdlog pattern).
 * Logs go to stderr unless `--log-stdout` or `DIASPORA_CTL_LOG_STDOUT=1` select stdout. Colour (the level name
 * only, like spdlog) is used only when the stream is a TTY and `NO_COLOR` is not set.
 *
 * Lines are written with `fs.writeSync`, so nothing is lost when the process exits right after logging; `EAGAIN`
 * (a non-blocking pipe that is full) is retried, `EPIPE` (the reader went away) drops the line silently.
 */
import { writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { dumpCompact } from '../api/json.js';

/** Levels in increasing severity; `off` disables everything. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** A level a message can be logged at (everything but `off`). */
export type MessageLevel = Exclude<LogLevel, 'off'>;

/** The values `--logging` accepts, in the order shown by `--help`. */
export const LOGGING_CHOICES = ['trace', 'debug', 'info', 'warn', 'error', 'critical', 'off'] as const;

const SEVERITY: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warning: 3, error: 4, critical: 5, off: 6 };

/**
 * Parses a `--logging` value: `trace|debug|info|warn|warning|error|critical|off` (case-sensitive, `warn` →
 * `warning`). Anything else → undefined (the caller reports a parse error).
 */
export function parseLogLevel(text: string): LogLevel | undefined {
  if (text === 'warn') return 'warning';
  return (LOG_LEVELS as readonly string[]).includes(text) ? (text as LogLevel) : undefined;
}

export type LogStream = 'stderr' | 'stdout';

/**
 * The stream logs go to: stdout when `--log-stdout` was given or the environment has `DIASPORA_CTL_LOG_STDOUT`
 * set to `1` or `true` (any case), else stderr.
 */
export function resolveLogStream(logStdout = false, env: NodeJS.ProcessEnv = process.env): LogStream {
  if (logStdout) return 'stdout';
  const v = env['DIASPORA_CTL_LOG_STDOUT'];
  return v !== undefined && /^(1|true)$/i.test(v.trim()) ? 'stdout' : 'stderr';
}

/**
 * Whether to colour the level names on file descriptor `fd`: only for a TTY, with `NO_COLOR` unset (even an
 * empty `NO_COLOR` disables colour) and `TERM` not `dumb`.
 */
export function shouldColor(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env['NO_COLOR'] !== undefined) return false;
  if (env['TERM'] === 'dumb') return false;
  return isatty(fd);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** `YYYY-MM-DD HH:MM:SS.mmm` in local time. */
export function formatTimestamp(date: Date): string {
  return (
    `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1, 2)}-${pad(date.getDate(), 2)} ` +
    `${pad(date.getHours(), 2)}:${pad(date.getMinutes(), 2)}:${pad(date.getSeconds(), 2)}.${pad(date.getMilliseconds(), 3)}`
  );
}

// spdlog's default colours for the level name.
const COLORS: Record<MessageLevel, string> = {
  trace: '\x1b[37m', // white
  debug: '\x1b[36m', // cyan
  info: '\x1b[32m', // green
  warning: '\x1b[33m\x1b[1m', // bold yellow
  error: '\x1b[31m\x1b[1m', // bold red
  critical: '\x1b[1m\x1b[41m', // bold on red
};
const RESET = '\x1b[m';

/** One text log line, without the trailing newline. */
export function formatLogLine(level: MessageLevel, message: string, date: Date, color = false): string {
  const name = color ? `${COLORS[level]}${level}${RESET}` : level;
  return `[${formatTimestamp(date)}] [${name}] ${message}`;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** One JSON log line (`log_format: json`): `{"level":…,"message":…,"time":"YYYY-MM-DD HH:MM:SS.mmm"}`. */
export function formatJsonLogLine(level: MessageLevel, message: string, date: Date): string {
  const text = message.replace(LONE_SURROGATE, '\ufffd');
  return dumpCompact({ level, message: text, time: formatTimestamp(date) });
}

const SLEEP_CELL = new Int32Array(new SharedArrayBuffer(4));
/** Upper bound on how long one line may wait for a full non-blocking pipe before it is dropped. */
const MAX_EAGAIN_WAIT_MS = 10_000;

/**
 * Writes all of `data` to `fd` synchronously. Partial writes are continued, `EAGAIN` is retried after a short
 * sleep (for at most 10 s), `EPIPE` and other errors drop the rest. Returns whether everything was written.
 * Also usable for command results on stdout (fd 1), so they are ordered with the log lines.
 */
export function writeAllSync(fd: number, data: string | Uint8Array): boolean {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  let waited = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' && waited < MAX_EAGAIN_WAIT_MS) {
        Atomics.wait(SLEEP_CELL, 0, 0, 1);
        waited += 1;
        continue;
      }
      return false;
    }
  }
  return true;
}

export interface LoggerOptions {
  /** Threshold; messages below it are dropped. Default `info`. */
  level?: LogLevel;
  /** Default: {@link resolveLogStream}() (stderr unless `DIASPORA_CTL_LOG_STDOUT=1`). */
  stream?: LogStream;
  /** Colour the level names. Default: {@link shouldColor} for the stream's descriptor. */
  color?: boolean;
  /** `text` (default, the CLI line format) or `json` (one JSON object per line, forwarding.md §2 `log_format`). */
  format?: 'text' | 'json';
  /** Replaces the stream (tests): receives each complete line including its trailing `\n`. */
  write?: (line: string) => void;
  /** Clock (tests). Default `() => new Date()`. */
  now?: () => Date;
}

export interface Logger {
  /** Current threshold; assignable. */
  level: LogLevel;
  readonly stream: LogStream;
  readonly color: boolean;
  /** Whether a message at `level` would be written. */
  enabled(level: MessageLevel): boolean;
  log(level: MessageLevel, message: string): void;
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  /** Logs at level `warning`. */
  warn(message: string): void;
  error(message: string): void;
  critical(message: string): void;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? resolveLogStream();
  const fd = stream === 'stdout' ? 1 : 2;
  const format = options.format ?? 'text';
  const color = format === 'text' && (options.color ?? (options.write === undefined && shouldColor(fd)));
  const now = options.now ?? (() => new Date());
  const write = options.write ?? ((line: string) => void writeAllSync(fd, line));
  let threshold = SEVERITY[options.level ?? 'info'];
  let levelName: LogLevel = options.level ?? 'info';

  const logger: Logger = {
    get level(): LogLevel {
      return levelName;
    },
    set level(l: LogLevel) {
      levelName = l;
      threshold = SEVERITY[l];
    },
    stream,
    color,
    enabled(level: MessageLevel): boolean {
      return SEVERITY[level] >= threshold;
    },
    log(level: MessageLevel, message: string): void {
      if (SEVERITY[level] < threshold) return;
      const date = now();
      const line = format === 'json' ? formatJsonLogLine(level, message, date) : formatLogLine(level, message, date, color);
      write(line + '\n');
    },
    trace: (m) => logger.log('trace', m),
    debug: (m) => logger.log('debug', m),
    info: (m) => logger.log('info', m),
    warn: (m) => logger.log('warning', m),
    error: (m) => logger.log('error', m),
    critical: (m) => logger.log('critical', m),
  };
  return logger;
}

/** A rate-limited log function (see {@link createRateLimitedLog}). */
export interface RateLimitedLog {
  (key: string, level: MessageLevel, message: string): void;
  /**
   * Logs, for every key with suppressed repeats, its last suppressed message with ` (repeated N times)` and
   * forgets all keys (call at shutdown so counts are not lost).
   */
  flush(): void;
}

interface RateEntry {
  last: number;
  suppressed: number;
  level: MessageLevel;
  message: string;
}

/**
 * Rate limiting for repeated errors (forwarding.md §11): the first message of a key is logged at once; later ones
 * are logged at most once per `intervalMs` per key, with ` (repeated N times)` appended when N > 0 messages of that
 * key were suppressed since the last logged one. Uses a monotonic clock (`now`, default `performance.now()`).
 */
export function createRateLimitedLog(
  logger: Logger,
  intervalMs = 10_000,
  now: () => number = () => performance.now(),
): RateLimitedLog {
  const entries = new Map<string, RateEntry>();
  const suffix = (n: number): string => (n > 0 ? ` (repeated ${n} times)` : '');

  const prune = (t: number): void => {
    for (const [k, e] of entries) if (e.suppressed === 0 && t - e.last >= intervalMs) entries.delete(k);
  };

  const fn = ((key: string, level: MessageLevel, message: string): void => {
    const t = now();
    const e = entries.get(key);
    if (e === undefined) {
      if (entries.size >= 1000) prune(t);
      entries.set(key, { last: t, suppressed: 0, level, message });
      logger.log(level, message);
      return;
    }
    if (t - e.last >= intervalMs) {
      logger.log(level, message + suffix(e.suppressed));
      e.last = t;
      e.suppressed = 0;
    } else {
      e.suppressed++;
    }
    e.level = level;
    e.message = message;
  }) as RateLimitedLog;

  fn.flush = (): void => {
    for (const e of entries.values()) if (e.suppressed > 0) logger.log(e.level, e.message + suffix(e.suppressed));
    entries.clear();
  };
  return fn;
}
