/** `diaspora-ctl fifo`: parse errors, start-up failures and bad control commands (diaspora-ctl.md §1, §7). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, createTopic, isFifo, runCtl, sendCommand, tempDir, waitFor } from '../fifo/helpers.js';

const T = { timeout: 20_000 };
const strip = (s: string): string[] =>
  s
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] /, ''));

test('missing --control-file → PARSE ERROR, exit 1', T, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = await runCtl(['fifo', '--driver', 'files', '--driver.root_path', dir], dir);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^PARSE ERROR: required option '--control-file <path>' not specified\n/);
    assert.match(r.stderr, /Brief USAGE: diaspora-ctl fifo --driver <type> --control-file <path> \[options\]/);
  } finally {
    cleanup();
  }
});

test('--help, --version', T, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const help = await runCtl(['fifo', '--help'], dir);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--control-file <path>/);
    assert.match(help.stdout, /--logging <level>/);
    const v = await runCtl(['fifo', '--version'], dir);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\nfifo {2}version: \d+\.\d+\.\d+\n\n$/);
  } finally {
    cleanup();
  }
});

test('control path is a regular file → error, exit 1, file left alone', T, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ctl = join(dir, 'ctl');
    writeFileSync(ctl, 'keep me');
    const r = await runCtl(['fifo', '--driver', 'files', '--driver.root_path', join(dir, 'data'), '--control-file', ctl, '--logging', 'error'], dir);
    assert.equal(r.code, 1);
    assert.deepEqual(strip(r.stderr), [`[error] Control file '${ctl}' exists and is not a FIFO`]);
    assert.equal(readFileSync(ctl, 'utf8'), 'keep me');
  } finally {
    cleanup();
  }
});

test('control FIFO cannot be created → error, exit 1', T, async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'file'), '');
    const ctl = join(dir, 'file', 'ctl'); // parent is a regular file
    const r = await runCtl(['fifo', '--driver', 'files', '--driver.root_path', join(dir, 'data'), '--control-file', ctl], dir);
    assert.equal(r.code, 1);
    assert.ok(strip(r.stderr).some((l) => l.startsWith('[error] Failed to create control FIFO: ')), r.stderr);
  } finally {
    cleanup();
  }
});

test('unknown driver → "Failed to create driver", exit 1', T, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = await runCtl(['fifo', '--driver', 'nosuch', '--control-file', join(dir, 'ctl')], dir);
    assert.equal(r.code, 1);
    assert.ok(strip(r.stderr).some((l) => l.startsWith("[error] Failed to create driver 'nosuch': ")), r.stderr);
    assert.ok(!isFifo(join(dir, 'ctl')), 'nothing created on disk');
  } finally {
    cleanup();
  }
});

test('an existing control FIFO is replaced; bad commands are reported and the daemon keeps serving', T, async () => {
  const { dir, cleanup } = tempDir();
  const root = join(dir, 'data');
  const ctl = join(dir, 'ctl');
  execFileSync('mkfifo', [ctl]);
  await createTopic(root, 't1');
  const d = Daemon.files(root, ctl, dir, ['--topic.x', '1']);
  try {
    await d.waitForLog('[info] Press Ctrl+C to stop.');
    assert.equal(d.count('[warning] Ignoring --topic.* options: not used by fifo'), 1);
    const missing = join(dir, 'nope');
    const regular = join(dir, 'regular');
    writeFileSync(regular, '');
    const c1 = join(dir, 'c1');
    execFileSync('mkfifo', [c1]);
    const commands = [
      'this is not a command',
      `${join(dir, 'p')} -> t1 (format=json`,
      `${missing} <- t1`,
      `${regular} <- t1`,
      `${regular} -> t1`,
      `${join(dir, 'p2')} -> nosuch`,
      `${join(dir, 'p3')} -> t1 (batch_size=0, colour=red, oops, format=xml)`,
      `${c1} <- t1 (start=never)`,
      `${c1} <- t1`,
      `${c1} -> t1`,
      `${ctl} -> t1`,
      '# a comment',
      '',
    ];
    await sendCommand(ctl, commands.join('\n'));
    await d.waitForLog(`[error] Failed to create producer: '${ctl}' is the control FIFO`);
    const p3 = join(dir, 'p3');
    const expected = [
      "[warning] Invalid command format: 'this is not a command'",
      '[warning] Missing closing parenthesis in command',
      `[warning] Invalid command format: '${join(dir, 'p')} -> t1 (format=json'`,
      `[error] Consumer FIFO '${missing}' does not exist. Please create it first with mkfifo.`,
      `[error] '${regular}' exists but is not a FIFO`,
      `[error] Failed to create producer: '${regular}' exists but is not a FIFO`,
      `[error] Failed to create producer: Topic directory does not exist: ${join(root, 'nosuch')}`,
      "[warning] Invalid key-value pair (missing '='): 'oops'",
      `[info] Received command: '${p3}' -> 't1' (batch_size=0, colour=red, format=xml)`,
      `[warning] Invalid batch_size '0' for FIFO '${p3}', using default (128)`,
      `[warning] Unknown option 'colour' for FIFO '${p3}'`,
      `[warning] Unknown format 'xml' for FIFO '${p3}', using 'raw' instead`,
      `[info] Registered producer: ${p3} -> t1`,
      `[warning] Invalid start 'never' for FIFO '${c1}', using default (committed)`,
      `[info] Registered consumer: ${c1} <- t1`,
      `[warning] Consumer FIFO '${c1}' already registered`,
      `[error] Failed to create producer: '${c1}' is already registered as a consumer FIFO`,
      `[error] Failed to create producer: '${ctl}' is the control FIFO`,
    ];
    const lines = d.logLines;
    let at = -1;
    for (const e of expected) {
      const i = lines.indexOf(e, at + 1);
      assert.ok(i > at, `missing or out of order: ${e}\n${d.stderr}`);
      at = i;
    }
    assert.ok(!isFifo(join(dir, 'p2')), 'no FIFO created for a failed producer');
    // still serving
    await sendCommand(ctl, `${join(dir, 'p4')} -> t1`);
    await d.waitForLog(`[info] Registered producer: ${join(dir, 'p4')} -> t1`);
    const stopped = await d.stop();
    assert.equal(stopped.code, 0, d.stderr);
  } finally {
    d.kill();
    cleanup();
  }
});

test('relative paths are relative to the working directory', T, async () => {
  const { dir, cleanup } = tempDir();
  await createTopic(join(dir, 'data'), 't1');
  const d = new Daemon(['--driver', 'files', '--driver.root_path', 'data', '--control-file', 'ctl'], dir);
  try {
    assert.ok(await waitFor(() => isFifo(join(dir, 'ctl')), 5000), d.stderr);
    await sendCommand(join(dir, 'ctl'), 'sub/../p -> t1');
    // "sub" does not exist, so the FIFO cannot be created there
    assert.equal(await d.waitForLogMatching(/^\[error\] Failed to create producer: /), "[error] Failed to create producer: 'sub/../p': No such file or directory");
    await sendCommand(join(dir, 'ctl'), 'p -> t1');
    await d.waitForLog('[info] Registered producer: p -> t1');
    assert.ok(isFifo(join(dir, 'p')));
    // an existing FIFO is used as is, and left in place at shutdown
    execFileSync('mkfifo', [join(dir, 'q')]);
    await sendCommand(join(dir, 'ctl'), 'q -> t1');
    await d.waitForLog('[info] Registered producer: q -> t1');
    assert.equal(d.count('[info] Created FIFO: q'), 0);
    assert.equal((await d.stop()).code, 0, d.stderr);
    assert.ok(!isFifo(join(dir, 'p')), 'created by the daemon: removed');
    assert.ok(isFifo(join(dir, 'q')), 'created by the user: kept');
    assert.equal(d.count('[info] Closing and removing producer for FIFO: q'), 1);
    assert.equal(d.count('[info] Removed FIFO file: q'), 0);
  } finally {
    d.kill();
    cleanup();
  }
});
