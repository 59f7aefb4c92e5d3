/**
 * The library's log hook. Drivers and daemons log through it; the CLI installs a sink that writes
 * the reference line format. Without a sink, warnings and errors go to stderr.
 */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warning' | 'error' | 'critical';
export type LogSink = (level: LogLevel, message: string) => void;

const defaultSink: LogSink = (level, message) => {
  if (level === 'warning' || level === 'error' || level === 'critical') process.stderr.write(`[diaspora-stream] [${level}] ${message}\n`);
};

let sink: LogSink = defaultSink;

/** Installs the sink (undefined restores the default). */
export function setLogSink(s: LogSink | undefined): void {
  sink = s ?? defaultSink;
}

export const log = {
  trace: (m: string): void => sink('trace', m),
  debug: (m: string): void => sink('debug', m),
  info: (m: string): void => sink('info', m),
  warn: (m: string): void => sink('warning', m),
  error: (m: string): void => sink('error', m),
};
