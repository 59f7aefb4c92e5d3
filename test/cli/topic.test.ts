/**
 * `diaspora-ctl` dispatcher and `topic create|list|describe|delete` end to end (diaspora-ctl.md §1–§6, §10):
 * exact stdout, stderr messages and exit codes, and the files created on disk.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, allLogLines, logLines, runCtl, tempDir, type RunResult } from '../helpers/cli.js';

const T = { timeout: 30_000 };
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Runs diaspora-ctl in a fresh temporary directory (removed afterwards) unless `cwd` is given. */
async function ctl(args: string[], cwd?: string): Promise<RunResult> {
  if (cwd !== undefined) return runCtl(args, { cwd });
  const { dir, cleanup } = tempDir();
  try {
    return await runCtl(args, { cwd: dir });
  } finally {
    cleanup();
  }
}

function assertUsage(stdout: string): void {
  const lines = stdout.split('\n');
  assert.equal(lines[0], 'Usage: diaspora-ctl <command> <action> [options]');
  assert.ok(lines.includes('Commands:'), stdout);
  for (const c of ['topic create', 'topic list', 'fifo', 'forward']) {
    assert.ok(
      lines.some((l) => new RegExp(`^  ${c} +\\S`).test(l)),
      `usage lists ${c}\n${stdout}`,
    );
  }
  assert.match(stdout, /diaspora-ctl <command> \[<action>\] --help/);
}

/** The single error log line of a failed command (timestamp removed). */
function errorLines(r: RunResult): string[] {
  return logLines(r.stderr).filter((l) => l.startsWith('[error] '));
}

function assertParseError(r: RunResult, message?: string): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.ok(r.stderr.startsWith('PARSE ERROR: '), r.stderr);
  if (message !== undefined) assert.equal(r.stderr.split('\n')[0], `PARSE ERROR: ${message}`);
  // then a brief usage
  assert.match(r.stderr.split('\n')[1] ?? '', /usage/i, r.stderr);
}

function createArgs(root: string, name: string, ...extra: string[]): string[] {
  return ['topic', 'create', '--driver', 'files', '--driver.root_path', root, '--name', name, ...extra];
}

describe('dispatcher (§1)', { concurrency: 6 }, () => {
  test('no arguments: usage on stdout, exit 1', T, async () => {
    const r = await ctl([]);
    assert.equal(r.code, 1);
    assertUsage(r.stdout);
    assert.equal(r.stderr, '');
  });

  test('-h and --help: usage on stdout, exit 0', T, async () => {
    for (const flag of ['--help', '-h']) {
      const r = await ctl([flag]);
      assert.equal(r.code, 0, flag);
      assertUsage(r.stdout);
      assert.equal(r.stderr, '');
    }
  });

  test('unknown command: usage, [error] Unknown command: X, exit 1', T, async () => {
    const r = await ctl(['X']);
    assert.equal(r.code, 1);
    assertUsage(r.stdout);
    assert.ok(allLogLines(r.stderr), r.stderr);
    assert.deepEqual(logLines(r.stderr), ['[error] Unknown command: X']);
  });

  test("topic without action: Error: 'topic' command requires an action, exit 1", T, async () => {
    const r = await ctl(['topic']);
    assert.equal(r.code, 1);
    assertUsage(r.stdout);
    assert.equal(r.stderr, "Error: 'topic' command requires an action\n");
  });

  test('topic --help / -h, bench --help: the group usage (its actions) on stdout, exit 0', T, async () => {
    for (const flag of ['--help', '-h']) {
      const r = await ctl(['topic', flag]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const lines = r.stdout.split('\n');
      assert.equal(lines[0], 'Usage: diaspora-ctl topic <action> [options]');
      for (const action of ['create', 'list', 'describe', 'delete']) assert.ok(lines.some((l) => l.startsWith(`  ${action} `)), r.stdout);
      assert.ok(r.stdout.includes("Use 'diaspora-ctl topic <action> --help' for help on an action."), r.stdout);
    }
    const r = await ctl(['bench', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith('Usage: diaspora-ctl bench <action> [options]\n'), r.stdout);
    assert.ok(/^ {2}produce +Producer benchmark/m.test(r.stdout) && /^ {2}consume +Consumer benchmark/m.test(r.stdout), r.stdout);
  });

  test('topic <bad>: [error] Unknown topic action: bad, exit 1', T, async () => {
    const r = await ctl(['topic', 'bad']);
    assert.equal(r.code, 1);
    assertUsage(r.stdout);
    assert.deepEqual(logLines(r.stderr), ['[error] Unknown topic action: bad']);
  });

  test('--version of each subcommand: "\\n<word>  version: <version>\\n\\n", exit 0', T, async () => {
    for (const [args, word] of [
      [['topic', 'create'], 'create'],
      [['topic', 'list'], 'list'],
      [['forward'], 'forward'],
    ] as const) {
      const r = await ctl([...args, '--version']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `\n${word}  version: ${VERSION}\n\n`);
      assert.equal(r.stderr, '');
    }
  });

  test('topic create --help: full usage with the --logging values, exit 0', T, async () => {
    const r = await ctl(['topic', 'create', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    for (const s of ['--driver', '--name', '--driver-config', '--topic-config', '--validator', '--logging', 'trace', 'critical', 'off']) {
      assert.ok(r.stdout.includes(s), `help mentions ${s}\n${r.stdout}`);
    }
  });
});

describe('parse errors (§1, §3)', { concurrency: 6 }, () => {
  test('missing --name', T, async () => {
    const r = await ctl(['topic', 'create', '--driver', 'files']);
    assertParseError(r);
    assert.match(r.stderr.split('\n')[0] as string, /--name/);
  });

  test('missing --driver (topic list)', T, async () => {
    const r = await ctl(['topic', 'list']);
    assertParseError(r);
    assert.match(r.stderr.split('\n')[0] as string, /--driver/);
  });

  test('unknown option', T, async () => {
    const r = await ctl(['topic', 'create', '--driver', 'files', '--name', 't', '--bogus']);
    assertParseError(r);
    assert.match(r.stderr.split('\n')[0] as string, /--bogus/);
  });

  test('bad --logging value', T, async () => {
    const r = await ctl(['topic', 'create', '--driver', 'files', '--name', 't', '--logging', 'loud']);
    assertParseError(r);
    assert.match(r.stderr.split('\n')[0] as string, /loud/);
  });

  test('dotted option without a value', T, async () => {
    const r = await ctl(['topic', 'create', '--driver', 'files', '--name', 't', '--driver.root_path']);
    assertParseError(r, 'Missing value for --driver.root_path');
  });

  test('empty key segment of a dotted option', T, async () => {
    const r = await ctl(['topic', 'create', '--driver', 'files', '--name', 't', '--driver..x', '1']);
    assertParseError(r);
  });

  test('invalid numeric dotted value (lone ".", beyond int64): [error] Error: Invalid numeric value: <v>, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const [opt, v] of [
        ['--driver.root_path', '.'],
        ['--topic.num_partitions', '99999999999999999999'],
      ] as const) {
        const r = await ctl(createArgs('./d', 'n', opt, v), dir);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, '');
        assert.ok(allLogLines(r.stderr), `only log lines on stderr (no stack trace):\n${r.stderr}`);
        assert.deepEqual(errorLines(r), [`[error] Error: Invalid numeric value: ${v}`]);
      }
      assert.ok(!existsSync(join(dir, 'd', 'n')));
    } finally {
      cleanup();
    }
  });

  test('--logging accepts warning, warn, error, debug, off', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const [i, level] of ['warning', 'warn', 'error', 'debug', 'off'].entries()) {
        const r = await ctl(createArgs('./d', `t${i}`, '--logging', level), dir);
        assert.equal(r.code, 0, `${level}: ${r.stderr}`);
        if (level === 'error' || level === 'off' || level === 'warn' || level === 'warning') assert.equal(r.stderr, '', level);
        if (level === 'debug') assert.ok(logLines(r.stderr).some((l) => l.startsWith('[debug] Driver config: {')), r.stderr);
      }
    } finally {
      cleanup();
    }
  });
});

describe('topic create (§5)', { concurrency: 6 }, () => {
  test('files driver: partitions and component files, exit 0, nothing on stdout, info logs', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await ctl(createArgs('./d', 't1', '--topic.num_partitions', '4'), dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.ok(allLogLines(r.stderr), r.stderr);
      assert.deepEqual(logLines(r.stderr), ['[info] Creating driver: files', '[info] Creating topic: t1', "[info] Topic 't1' created successfully"]);
      const topicDir = join(dir, 'd', 't1');
      assert.deepEqual(readdirSync(join(topicDir, 'partitions')).sort(), ['00000000', '00000001', '00000002', '00000003']);
      for (const f of ['validator.json', 'serializer.json', 'partition-selector.json']) {
        const bytes = readFileSync(join(topicDir, f));
        assert.equal(bytes.toString('utf8'), '{\n  "type": "default"\n}', f);
        assert.equal(bytes.length, 23, f);
        assert.deepEqual(JSON.parse(bytes.toString('utf8')), { type: 'default' });
      }
    } finally {
      cleanup();
    }
  });

  test('default: one partition', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await ctl(createArgs('./d', 'one'), dir);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readdirSync(join(dir, 'd', 'one', 'partitions')), ['00000000']);
    } finally {
      cleanup();
    }
  });

  test('duplicate topic: [error] Error: Topic already exists: t1, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal((await ctl(createArgs('./d', 't1'), dir)).code, 0);
      const r = await ctl(createArgs('./d', 't1'), dir);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.deepEqual(errorLines(r), ['[error] Error: Topic already exists: t1']);
    } finally {
      cleanup();
    }
  });

  test('invalid topic names', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const n of ['a/b', '..', '.x']) {
        const r = await ctl(createArgs('./d', n), dir);
        assert.equal(r.code, 1, n);
        assert.deepEqual(errorLines(r), [`[error] Error: Invalid topic name: ${n}`], n);
      }
      assert.ok(!existsSync(join(dir, 'd', 'a')));
      assert.ok(!existsSync(join(dir, 'd', '.x')));
    } finally {
      cleanup();
    }
  });

  test('invalid num_partitions (0, a string)', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const opt of [['--topic.num_partitions', '0'], ['--topic.num_partitions=abc'], ['--topic.num_partitions', '-3']]) {
        const r = await ctl(createArgs('./d', 'tp', ...opt), dir);
        assert.equal(r.code, 1, opt.join(' '));
        assert.deepEqual(errorLines(r), ['[error] Error: Invalid value for "num_partitions" option'], opt.join(' '));
      }
      assert.ok(!existsSync(join(dir, 'd', 'tp')));
    } finally {
      cleanup();
    }
  });

  test('unknown driver', T, async () => {
    const r = await ctl(['topic', 'create', '--driver', 'nosuch', '--name', 't']);
    assert.equal(r.code, 1);
    const errs = errorLines(r);
    assert.equal(errs.length, 1, r.stderr);
    assert.ok((errs[0] as string).startsWith('[error] Error: Trying to load diaspora-stream-nosuch failed:'), r.stderr);
  });

  test('--driver-config: missing file, malformed JSON, non-object root', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      let r = await ctl(['topic', 'create', '--driver', 'files', '--driver-config', 'missing.json', '--name', 't'], dir);
      assert.equal(r.code, 1);
      assert.deepEqual(errorLines(r), ['[error] Failed to open config file: missing.json']);

      writeFileSync(join(dir, 'bad.json'), '{"root_path": ');
      r = await ctl(['topic', 'create', '--driver', 'files', '--driver-config', 'bad.json', '--name', 't'], dir);
      assert.equal(r.code, 1);
      assert.equal(errorLines(r).length, 1, r.stderr);
      assert.ok((errorLines(r)[0] as string).startsWith('[error] Error: Could not parse JSON:'), r.stderr);

      writeFileSync(join(dir, 'arr.json'), '[]');
      r = await ctl(['topic', 'create', '--driver', 'files', '--driver-config', 'arr.json', '--name', 't'], dir);
      assert.equal(r.code, 1);
      assert.deepEqual(errorLines(r), ['[error] Error: Config file arr.json must contain a JSON object']);

      // --topic-config goes through the same checks
      r = await ctl(['topic', 'create', '--driver', 'files', '--driver.root_path', './d', '--topic-config', 'nope.json', '--name', 't'], dir);
      assert.equal(r.code, 1);
      assert.deepEqual(errorLines(r), ['[error] Failed to open config file: nope.json']);
      assert.ok(!existsSync(join(dir, 'd', 't')));
    } finally {
      cleanup();
    }
  });

  test('--driver-config merged with dotted options (command line wins)', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'drv.json'), JSON.stringify({ root_path: './from-file' }));
      writeFileSync(join(dir, 'topic.json'), JSON.stringify({ num_partitions: 3 }));
      let r = await ctl(['topic', 'create', '--driver', 'files', '--driver-config', 'drv.json', '--topic-config', 'topic.json', '--name', 'a'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readdirSync(join(dir, 'from-file', 'a', 'partitions')).length, 3);
      r = await ctl(
        ['topic', 'create', '--driver', 'files', '--driver-config', 'drv.json', '--driver.root_path', './cli', '--topic-config', 'topic.json', '--topic.num_partitions', '2', '--name', 'b'],
        dir,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readdirSync(join(dir, 'cli', 'b', 'partitions')).length, 2);
    } finally {
      cleanup();
    }
  });

  test('--driver.flush_behavior nope: the exact error', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await ctl(createArgs('./d', 't', '--driver.flush_behavior', 'nope'), dir);
      assert.equal(r.code, 1);
      assert.deepEqual(errorLines(r), ['[error] Error: Invalid flush_behavior: nope. Valid values are: immediate, on_flush, buffered']);
    } finally {
      cleanup();
    }
  });

  test('--driver.use_file_locking true is a boolean (accepted)', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await ctl(createArgs('./d', 'locked', '--driver.use_file_locking', 'true', '--driver.flush_behavior', 'on_flush'), dir);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(existsSync(join(dir, 'd', 'locked', 'partitions', '00000000')));
    } finally {
      cleanup();
    }
  });

  test('--validator schema with --validator.schema.type object writes validator.json', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await ctl(createArgs('./d', 'v', '--validator', 'schema', '--validator.schema.type', 'object'), dir);
      assert.equal(r.code, 0, r.stderr);
      const v = JSON.parse(readFileSync(join(dir, 'd', 'v', 'validator.json'), 'utf8')) as unknown;
      assert.deepEqual(v, { type: 'schema', schema: { type: 'object' } });
    } finally {
      cleanup();
    }
  });

  test('dotted component options without the component: warning, ignored', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await ctl(createArgs('./d', 'w', '--validator.schema.type', 'object'), dir);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(logLines(r.stderr).includes('[warning] Ignoring --validator.* options: --validator not given'), r.stderr);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'd', 'w', 'validator.json'), 'utf8')), { type: 'default' });
    } finally {
      cleanup();
    }
  });
});

describe('topic list, describe, delete (§6)', { concurrency: 4 }, () => {
  test('list: names sorted; -v: name and compact JSON; nothing else on stdout', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal((await ctl(createArgs('./d', 'b'), dir)).code, 0);
      assert.equal((await ctl(createArgs('./d', 'a', '--topic.num_partitions', '2'), dir)).code, 0);
      let r = await ctl(['topic', 'list', '--driver', 'files', '--driver.root_path', './d'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'a\nb\n');
      assert.equal(r.stderr, '');
      // nothing else on stdout at any log level
      r = await ctl(['topic', 'list', '--driver', 'files', '--driver.root_path', './d', '--logging', 'trace'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'a\nb\n');

      for (const flag of ['-v', '--verbose']) {
        r = await ctl(['topic', 'list', '--driver', 'files', '--driver.root_path', './d', flag], dir);
        assert.equal(r.code, 0, r.stderr);
        const lines = r.stdout.split('\n');
        assert.equal(lines.pop(), '');
        assert.equal(lines.length, 2, r.stdout);
        const [la, lb] = lines as [string, string];
        assert.ok(la.startsWith('a {'), la);
        assert.ok(lb.startsWith('b {'), lb);
        const ja = la.slice(2);
        assert.ok(!/\s/.test(ja.replace(/"[^"]*"/g, '')), `compact JSON: ${ja}`);
        assert.ok(ja.includes('"path":"./d/a"'), ja);
        const da = JSON.parse(ja) as Record<string, unknown>;
        assert.equal(da['name'], 'a');
        assert.equal(da['num_partitions'], 2);
        assert.equal(da['path'], './d/a');
      }
    } finally {
      cleanup();
    }
  });

  test('list: empty root (absent or empty) → no output, exit 0', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      let r = await ctl(['topic', 'list', '--driver', 'files', '--driver.root_path', './none'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      r = await ctl(['topic', 'list', '--driver', 'files', '--driver.root_path', './', '-v'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
    } finally {
      cleanup();
    }
  });

  test('list ignores other dotted prefixes with a warning', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await ctl(['topic', 'list', '--driver', 'files', '--driver.root_path', './d', '--topic.num_partitions', '3'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(logLines(r.stderr).filter((l) => l.startsWith('[warning] Ignoring --topic.* options')).length, 1, r.stderr);
    } finally {
      cleanup();
    }
  });

  test('describe: JSON with partitions and event counts; unknown topic → exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal((await ctl(createArgs('./d', 'x', '--topic.num_partitions', '3'), dir)).code, 0);
      let r = await ctl(['topic', 'describe', '--driver', 'files', '--driver.root_path', './d', '--name', 'x'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.endsWith('\n'));
      assert.equal(r.stdout.split('\n').length, 2, 'one line');
      const d = JSON.parse(r.stdout) as { name: string; num_partitions: number; partitions: { num_events: number }[]; validator: unknown };
      assert.equal(d.name, 'x');
      assert.equal(d.num_partitions, 3);
      assert.equal(d.partitions.length, 3);
      assert.ok(d.partitions.every((p) => p.num_events === 0));
      assert.deepEqual(d.validator, { type: 'default' });

      r = await ctl(['topic', 'describe', '--driver', 'files', '--driver.root_path', './d', '--name', 'nope'], dir);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(errorLines(r).length, 1, r.stderr);
      assert.ok((errorLines(r)[0] as string).startsWith('[error] Error: '), r.stderr);
      assert.ok((errorLines(r)[0] as string).includes('nope'), r.stderr);
    } finally {
      cleanup();
    }
  });

  test('delete: gone from the list; deleting an unknown topic → exit 1 with a message', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      assert.equal((await ctl(createArgs('./d', 'keep'), dir)).code, 0);
      assert.equal((await ctl(createArgs('./d', 'gone'), dir)).code, 0);
      let r = await ctl(['topic', 'delete', '--driver', 'files', '--driver.root_path', './d', '--name', 'gone'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.ok(logLines(r.stderr).includes("[info] Topic 'gone' deleted"), r.stderr);
      assert.ok(!existsSync(join(dir, 'd', 'gone')));
      r = await ctl(['topic', 'list', '--driver', 'files', '--driver.root_path', './d'], dir);
      assert.equal(r.stdout, 'keep\n');

      r = await ctl(['topic', 'delete', '--driver', 'files', '--driver.root_path', './d', '--name', 'gone'], dir);
      assert.equal(r.code, 1);
      assert.deepEqual(errorLines(r), ['[error] Error: Topic gone does not exist']);
    } finally {
      cleanup();
    }
  });

  test('delete: a directory under the root that is not a topic → exit 1 with a message, nothing removed', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      mkdirSync(join(dir, 'd', 'Documents'), { recursive: true });
      writeFileSync(join(dir, 'd', 'Documents', 'thesis.txt'), 'keep me');
      const r = await ctl(['topic', 'delete', '--driver', 'files', '--driver.root_path', './d', '--name', 'Documents'], dir);
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(errorLines(r), ['[error] Error: Topic Documents does not exist']);
      assert.ok(!logLines(r.stderr).some((l) => l.includes('deleted')), r.stderr);
      assert.equal(readFileSync(join(dir, 'd', 'Documents', 'thesis.txt'), 'utf8'), 'keep me');
    } finally {
      cleanup();
    }
  });
});
