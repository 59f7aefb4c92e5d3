import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LOGGING_CHOICES,
  createLogger,
  createRateLimitedLog,
  formatJsonLogLine,
  formatLogLine,
  formatTimestamp,
  parseLogLevel,
  resolveLogStream,
  shouldColor,
  writeAllSync,
} from '../../src/cli/log.js';

const LOG_MODULE = new URL('../../src/cli/log.js', import.meta.url).href;
// Local-time components, so the expected text does not depend on the time zone.
const T = new Date(2024, 0, 2, 3, 4, 5, 6);
const TS = '[2024-01-02 03:04:05.006]';

function capture(options: Parameters<typeof createLogger>[0] = {}) {
  const lines: string[] = [];
  const logger = createLogger({ ...options, write: (l) => lines.push(l), now: () => T });
  return { logger, lines };
}

test('parseLogLevel accepts the --logging values', () => {
  assert.equal(parseLogLevel('trace'), 'trace');
  assert.equal(parseLogLevel('debug'), 'debug');
  assert.equal(parseLogLevel('info'), 'info');
  assert.equal(parseLogLevel('warn'), 'warning');
  assert.equal(parseLogLevel('warning'), 'warning');
  assert.equal(parseLogLevel('error'), 'error');
  assert.equal(parseLogLevel('critical'), 'critical');
  assert.equal(parseLogLevel('off'), 'off');
  assert.deepEqual([...LOGGING_CHOICES], ['trace', 'debug', 'info', 'warn', 'error', 'critical', 'off']);
});

test('parseLogLevel rejects anything else', () => {
  for (const bad of ['', 'WARN', 'Info', 'verbose', 'err', 'info ', 'none', '0']) {
    assert.equal(parseLogLevel(bad), undefined, bad);
  }
});

test('timestamps are local time with milliseconds', () => {
  assert.equal(formatTimestamp(T), '2024-01-02 03:04:05.006');
  assert.equal(formatTimestamp(new Date(1999, 11, 31, 23, 59, 59, 999)), '1999-12-31 23:59:59.999');
  assert.equal(formatTimestamp(new Date(2025, 9, 10, 12, 0, 0, 0)), '2025-10-10 12:00:00.000');
});

test('line format without and with colour', () => {
  assert.equal(formatLogLine('info', 'hello world', T), `${TS} [info] hello world`);
  assert.equal(formatLogLine('warning', 'w', T), `${TS} [warning] w`);
  assert.equal(formatLogLine('info', 'c', T, true), `${TS} [\x1b[32minfo\x1b[m] c`);
  assert.equal(formatLogLine('error', 'e', T, true), `${TS} [\x1b[31m\x1b[1merror\x1b[m] e`);
  assert.equal(formatLogLine('critical', 'x', T, true), `${TS} [\x1b[1m\x1b[41mcritical\x1b[m] x`);
});

test('json line format', () => {
  assert.equal(formatJsonLogLine('info', 'a "b"', T), '{"level":"info","message":"a \\"b\\"","time":"2024-01-02 03:04:05.006"}');
  assert.equal(formatJsonLogLine('error', 'x\ud800y', T), '{"level":"error","message":"x\ufffdy","time":"2024-01-02 03:04:05.006"}');
  const { logger, lines } = capture({ format: 'json' });
  logger.warn('w');
  assert.deepEqual(lines, ['{"level":"warning","message":"w","time":"2024-01-02 03:04:05.006"}\n']);
});

test('logger methods and the default threshold (info)', () => {
  const { logger, lines } = capture();
  assert.equal(logger.level, 'info');
  logger.trace('t');
  logger.debug('d');
  logger.info('i');
  logger.warn('w');
  logger.error('e');
  logger.critical('c');
  logger.log('info', 'l');
  assert.deepEqual(lines, [
    `${TS} [info] i\n`,
    `${TS} [warning] w\n`,
    `${TS} [error] e\n`,
    `${TS} [critical] c\n`,
    `${TS} [info] l\n`,
  ]);
});

test('logger threshold trace, error, off and level changes', () => {
  const { logger, lines } = capture({ level: 'trace' });
  logger.trace('t');
  logger.debug('d');
  assert.deepEqual(lines, [`${TS} [trace] t\n`, `${TS} [debug] d\n`]);
  assert.equal(logger.enabled('trace'), true);

  logger.level = 'error';
  assert.equal(logger.level, 'error');
  assert.equal(logger.enabled('warning'), false);
  assert.equal(logger.enabled('error'), true);
  assert.equal(logger.enabled('critical'), true);
  logger.warn('w');
  logger.error('e');
  assert.deepEqual(lines.slice(2), [`${TS} [error] e\n`]);

  logger.level = 'off';
  for (const l of ['trace', 'debug', 'info', 'warning', 'error', 'critical'] as const) assert.equal(logger.enabled(l), false);
  logger.critical('c');
  assert.equal(lines.length, 3);
});

test('colour is off for injected writers unless asked for', () => {
  assert.equal(capture().logger.color, false);
  const { logger, lines } = capture({ color: true });
  assert.equal(logger.color, true);
  logger.info('x');
  assert.deepEqual(lines, [`${TS} [\x1b[32minfo\x1b[m] x\n`]);
  // JSON lines are never coloured.
  assert.equal(capture({ color: true, format: 'json' }).logger.color, false);
});

test('stream selection: --log-stdout and DIASPORA_CTL_LOG_STDOUT', () => {
  assert.equal(resolveLogStream(false, {}), 'stderr');
  assert.equal(resolveLogStream(true, {}), 'stdout');
  assert.equal(resolveLogStream(false, { DIASPORA_CTL_LOG_STDOUT: '1' }), 'stdout');
  assert.equal(resolveLogStream(false, { DIASPORA_CTL_LOG_STDOUT: 'true' }), 'stdout');
  assert.equal(resolveLogStream(false, { DIASPORA_CTL_LOG_STDOUT: '0' }), 'stderr');
  assert.equal(resolveLogStream(false, { DIASPORA_CTL_LOG_STDOUT: '' }), 'stderr');
  assert.equal(resolveLogStream(true, { DIASPORA_CTL_LOG_STDOUT: '0' }), 'stdout');
  assert.equal(capture({ stream: 'stdout' }).logger.stream, 'stdout');
  assert.equal(capture({ stream: 'stderr' }).logger.stream, 'stderr');
});

test('shouldColor: never for non-TTYs or with NO_COLOR', () => {
  const dir = mkdtempSync(join(tmpdir(), 'diaspora-log-'));
  try {
    const fd = openSync(join(dir, 'f'), 'w');
    try {
      assert.equal(shouldColor(fd, {}), false);
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(shouldColor(1, { NO_COLOR: '1' }), false);
  assert.equal(shouldColor(1, { NO_COLOR: '' }), false);
  assert.equal(shouldColor(1, { TERM: 'dumb' }), false);
});

test('writeAllSync writes everything to a file descriptor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'diaspora-log-'));
  try {
    const file = join(dir, 'out');
    const fd = openSync(file, 'w');
    assert.equal(writeAllSync(fd, 'héllo\n'), true);
    assert.equal(writeAllSync(fd, new Uint8Array([0x61, 0x62])), true);
    closeSync(fd);
    assert.equal(readFileSync(file, 'utf8'), 'héllo\nab');
    assert.equal(writeAllSync(fd, 'x'), false); // closed descriptor: EBADF, dropped
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function runChild(code: string, env: NodeJS.ProcessEnv = {}) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env['DIASPORA_CTL_LOG_STDOUT'] === undefined) delete childEnv['DIASPORA_CTL_LOG_STDOUT'];
  return spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    env: childEnv,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 30_000, // a hung child fails its test instead of holding the file until the runner's limit
    killSignal: 'SIGKILL',
  });
}

const LINE = /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}\] \[info\] hello\n$/;

test('logs go to stderr by default, stdout with DIASPORA_CTL_LOG_STDOUT=1, and survive process.exit', () => {
  const code = `import { createLogger } from '${LOG_MODULE}'; createLogger().info('hello'); process.exit(3);`;
  const a = runChild(code);
  assert.equal(a.status, 3);
  assert.equal(a.stdout, '');
  assert.match(a.stderr, LINE);
  const b = runChild(code, { DIASPORA_CTL_LOG_STDOUT: '1' });
  assert.equal(b.status, 3);
  assert.equal(b.stderr, '');
  assert.match(b.stdout, LINE);
  const c = runChild(`import { createLogger } from '${LOG_MODULE}'; createLogger({ stream: 'stdout' }).info('hello');`);
  assert.match(c.stdout, LINE);
  assert.equal(c.stderr, '');
});

test('large synchronous writes to a pipe are complete even when exiting at once', () => {
  const code =
    `import { writeAllSync } from '${LOG_MODULE}';` +
    // touching process.stdout makes Node switch the pipe to non-blocking mode: partial writes and EAGAIN happen
    `void process.stdout;` +
    `const ok = writeAllSync(1, 'x'.repeat(4 * 1024 * 1024) + '\\n'); writeAllSync(2, String(ok)); process.exit(0);`;
  const r = runChild(code);
  assert.equal(r.status, 0);
  assert.equal(r.stderr, 'true');
  assert.equal(r.stdout.length, 4 * 1024 * 1024 + 1);
  assert.equal(r.stdout, 'x'.repeat(4 * 1024 * 1024) + '\n');
});

test('rate-limited log: first at once, then once per interval with the repeat count', () => {
  const { logger, lines } = capture();
  let now = 1000;
  const rl = createRateLimitedLog(logger, 10_000, () => now);
  rl('p1', 'error', 'boom');
  assert.deepEqual(lines, [`${TS} [error] boom\n`]);
  now += 1;
  rl('p1', 'error', 'boom');
  now += 5000;
  rl('p1', 'error', 'boom');
  rl('p1', 'error', 'boom');
  assert.equal(lines.length, 1);
  // another key is independent
  rl('p2', 'warning', 'other');
  assert.deepEqual(lines.slice(1), [`${TS} [warning] other\n`]);
  now = 1000 + 10_000;
  rl('p1', 'error', 'boom');
  assert.deepEqual(lines.slice(2), [`${TS} [error] boom (repeated 3 times)\n`]);
  // right after a logged line: suppressed again
  now += 9_999;
  rl('p1', 'error', 'boom');
  assert.equal(lines.length, 3);
  now += 1;
  rl('p1', 'error', 'boom again');
  assert.deepEqual(lines.slice(3), [`${TS} [error] boom again (repeated 1 times)\n`]);
  // nothing suppressed in between: no suffix
  now += 20_000;
  rl('p1', 'error', 'boom');
  assert.deepEqual(lines.slice(4), [`${TS} [error] boom\n`]);
});

test('rate-limited log: flush reports pending repeat counts', () => {
  const { logger, lines } = capture();
  let now = 0;
  const rl = createRateLimitedLog(logger, 10_000, () => now);
  rl('a', 'error', 'e1');
  rl('a', 'error', 'e2');
  rl('a', 'error', 'e3');
  rl('b', 'warning', 'w1');
  now = 1;
  rl.flush();
  assert.deepEqual(lines, [`${TS} [error] e1\n`, `${TS} [warning] w1\n`, `${TS} [error] e3 (repeated 2 times)\n`]);
  // keys are forgotten: the next message is logged at once
  rl('a', 'error', 'e4');
  assert.deepEqual(lines.slice(3), [`${TS} [error] e4\n`]);
});

test('rate-limited log: the default interval is 10 s; messages below the threshold count as logged', () => {
  const { logger, lines } = capture({ level: 'error' });
  let now = 0;
  const rl = createRateLimitedLog(logger, undefined, () => now);
  rl('k', 'warning', 'hidden');
  now = 9_999;
  rl('k', 'error', 'shown?');
  assert.deepEqual(lines, []);
  now = 10_000;
  rl('k', 'error', 'shown');
  assert.deepEqual(lines, [`${TS} [error] shown (repeated 1 times)\n`]);
});
