/** The fifo daemon's control-command grammar (diaspora-ctl.md §7.2), rule by rule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CommandLineSplitter,
  MAX_COMMAND_LINE,
  describeCommand,
  parseControlLine,
  trimCommandText,
  type FifoCommand,
  type ParseOutcome,
} from '../../src/fifo/command-parser.js';

const T = { timeout: 5000 };

function command(outcome: ParseOutcome): { command: FifoCommand; warnings: string[] } {
  assert.equal(outcome.kind, 'command', `expected a command, got ${JSON.stringify(outcome)}`);
  return outcome as { kind: 'command'; command: FifoCommand; warnings: string[] };
}

function invalid(line: string, warnings: string[] = []): void {
  const o = parseControlLine(line);
  assert.equal(o.kind, 'invalid', `expected invalid for ${JSON.stringify(line)}`);
  assert.deepEqual((o as { warnings: string[] }).warnings, [...warnings, `Invalid command format: '${line}'`]);
}

function opts(c: FifoCommand): [string, string][] {
  return [...c.options];
}

test('producer command: path -> topic', T, () => {
  const { command: c, warnings } = command(parseControlLine('p1 -> t1'));
  assert.deepEqual(c, { direction: 'producer', path: 'p1', topic: 't1', options: new Map() });
  assert.deepEqual(warnings, []);
});

test('consumer command: path <- topic', T, () => {
  const { command: c } = command(parseControlLine('/tmp/x/c1 <- topic-2'));
  assert.equal(c.direction, 'consumer');
  assert.equal(c.path, '/tmp/x/c1');
  assert.equal(c.topic, 'topic-2');
});

test('the first " -> " wins; " <- " is looked for only when there is no " -> "', T, () => {
  let c = command(parseControlLine('a -> b -> c')).command;
  assert.deepEqual([c.direction, c.path, c.topic], ['producer', 'a', 'b -> c']);
  c = command(parseControlLine('a <- b -> c')).command;
  assert.deepEqual([c.direction, c.path, c.topic], ['producer', 'a <- b', 'c']);
  c = command(parseControlLine('a <- b <- c')).command;
  assert.deepEqual([c.direction, c.path, c.topic], ['consumer', 'a', 'b <- c']);
});

test('the arrow needs a space on both sides', T, () => {
  invalid('p1->t1');
  invalid('p1 ->t1');
  invalid('p1-> t1');
  invalid('p1<-t1');
  invalid('just some words');
  // a tab is not a space
  invalid('p1\t->\tt1');
});

test('path and rest are trimmed of spaces, tabs, CR and LF', T, () => {
  const c = command(parseControlLine(' \t p 1 \t ->  \t t1 \r')).command;
  assert.equal(c.path, 'p 1');
  assert.equal(c.topic, 't1');
  assert.equal(trimCommandText('\r\n\t x y \t\n\r'), 'x y');
  // other whitespace is kept
  assert.equal(trimCommandText('\u00a0x\v'), '\u00a0x\v');
});

test('blank lines and lines starting with # are ignored', T, () => {
  assert.deepEqual(parseControlLine(''), { kind: 'ignored' });
  assert.deepEqual(parseControlLine(' \t\r'), { kind: 'ignored' });
  assert.deepEqual(parseControlLine('# p1 -> t1'), { kind: 'ignored' });
  assert.deepEqual(parseControlLine('  #comment'), { kind: 'ignored' });
});

test('empty path or topic → invalid', T, () => {
  invalid(' -> t1 ');
  invalid('  ->  t1');
  invalid('p1 ->  ');
  invalid('p1 -> (format=json)');
  invalid('p1 <-  \t');
});

test('options in parentheses: topic before "(", pairs split on "," and the first "="', T, () => {
  const { command: c, warnings } = command(parseControlLine('p1 -> t1 (format=json, batch_size = 16 ,x=a=b)'));
  assert.equal(c.topic, 't1');
  assert.deepEqual(opts(c), [
    ['format', 'json'],
    ['batch_size', '16'],
    ['x', 'a=b'],
  ]);
  assert.deepEqual(warnings, []);
  // no space before "("
  assert.equal(command(parseControlLine('p1 -> t1(format=raw)')).command.topic, 't1');
});

test('text after ")" is ignored', T, () => {
  const c = command(parseControlLine('p1 -> t1 (format=json) trailing junk (x=1)')).command;
  assert.equal(c.topic, 't1');
  assert.deepEqual(opts(c), [['format', 'json']]);
});

test('options end at the first ")"', T, () => {
  const c = command(parseControlLine('p1 -> t1 (a=(1), b=2)')).command;
  assert.deepEqual(opts(c), [['a', '(1']]);
});

test('empty or blank parentheses give no options', T, () => {
  for (const line of ['p1 -> t1 ()', 'p1 -> t1 (  )', 'p1 -> t1 ( \t )']) {
    const { command: c, warnings } = command(parseControlLine(line));
    assert.equal(c.options.size, 0);
    assert.deepEqual(warnings, []);
  }
});

test('missing ")" → warning, then invalid', T, () => {
  invalid('p1 -> t1 (format=json', ['Missing closing parenthesis in command']);
  invalid('c1 <- t1 (', ['Missing closing parenthesis in command']);
});

test("an item without '=' → warning, the command is still accepted", T, () => {
  const { command: c, warnings } = command(parseControlLine('p1 -> t1 (format=json, oops , batch_size=4)'));
  assert.deepEqual(opts(c), [
    ['format', 'json'],
    ['batch_size', '4'],
  ]);
  assert.deepEqual(warnings, ["Invalid key-value pair (missing '='): 'oops'"]);
});

test("empty items: one trailing ',' is dropped, other empty items warn", T, () => {
  let r = command(parseControlLine('p1 -> t1 (a=1,)'));
  assert.deepEqual(opts(r.command), [['a', '1']]);
  assert.deepEqual(r.warnings, []);
  r = command(parseControlLine('p1 -> t1 (a=1,,b=2)'));
  assert.deepEqual(opts(r.command), [
    ['a', '1'],
    ['b', '2'],
  ]);
  assert.deepEqual(r.warnings, ["Invalid key-value pair (missing '='): ''"]);
});

test('an empty key is ignored; an empty value is kept', T, () => {
  const { command: c, warnings } = command(parseControlLine('p1 -> t1 ( =x, k= )'));
  assert.deepEqual(opts(c), [['k', '']]);
  assert.deepEqual(warnings, []);
});

test('a repeated key takes the last value', T, () => {
  const c = command(parseControlLine('p1 -> t1 (format=json, batch_size=2, format=raw)')).command;
  assert.deepEqual(opts(c), [
    ['format', 'raw'],
    ['batch_size', '2'],
  ]);
});

test('pair warnings come before the invalid-format warning', T, () => {
  invalid(' -> t1', []);
  const o = parseControlLine(' -> (nokey)');
  assert.equal(o.kind, 'invalid');
  assert.deepEqual((o as { warnings: string[] }).warnings, ["Invalid key-value pair (missing '='): 'nokey'", "Invalid command format: ' -> (nokey)'"]);
});

test('"Received command" text, with options when given', T, () => {
  assert.equal(describeCommand(command(parseControlLine('p1 -> t1')).command), "Received command: 'p1' -> 't1'");
  assert.equal(describeCommand(command(parseControlLine('c1 <- t1 ()')).command), "Received command: 'c1' <- 't1'");
  assert.equal(
    describeCommand(command(parseControlLine('c1 <- t1 (format=json, start=earliest)')).command),
    "Received command: 'c1' <- 't1' (format=json, start=earliest)",
  );
});

test('relative and absolute paths are kept as written', T, () => {
  assert.equal(command(parseControlLine('./a/../p1 -> t1')).command.path, './a/../p1');
});

test('CommandLineSplitter: split on \\n, an unfinished line waits for its end', T, () => {
  const s = new CommandLineSplitter();
  assert.deepEqual(s.push('p1 -> t1\nc1 <'), ['p1 -> t1']);
  assert.equal(s.rest, 'c1 <');
  assert.deepEqual(s.push('- t1\r\n\n'), ['c1 <- t1\r', '']);
  assert.equal(s.rest, '');
});

test('CommandLineSplitter: a line longer than MAX_COMMAND_LINE is dropped (counted), the lines around it are kept', T, () => {
  const s = new CommandLineSplitter();
  const chunk = 'x'.repeat(1024);
  assert.deepEqual(s.push('p1 -> t1\n' + chunk), ['p1 -> t1']);
  // 200 KiB without a newline, in 1 KiB pieces: nothing kept beyond the limit
  for (let i = 0; i < 200; i++) assert.deepEqual(s.push(chunk), []);
  assert.equal(s.rest, '');
  assert.equal(s.dropped, 1);
  assert.deepEqual(s.push('tail of the long line\nc1 <- t1\n'), ['c1 <- t1']);
  assert.equal(s.dropped, 1);
  // a complete line over the limit in one chunk, and one exactly at it
  const atLimit = 'y'.repeat(MAX_COMMAND_LINE);
  assert.deepEqual(s.push(atLimit + 'z\n' + atLimit + '\n'), [atLimit]);
  assert.equal(s.dropped, 2);
});
