/**
 * `diaspora-ctl produce` and `diaspora-ctl consume` end to end: lines from stdin become events (raw, json,
 * envelope formats, --data-file), consume prints them as JSON lines, consumer groups continue after the
 * acknowledged events, and large outputs through a pipe are complete.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, committedPositions, createTopic, ctlEnv, logLines, produce, readAll, runCtl, tempDir, type RunResult } from '../helpers/cli.js';

const T = { timeout: 40_000 };

interface Line {
  partition: number;
  id: number;
  metadata: unknown;
  data_size?: number;
  data?: string;
}

function parseLines(stdout: string): Line[] {
  assert.ok(stdout === '' || stdout.endsWith('\n'), 'output ends with a newline');
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
}

function drv(root: string): string[] {
  return ['--driver', 'files', '--driver.root_path', root];
}

async function produceCli(dir: string, topic: string, input: string | Buffer, ...extra: string[]): Promise<RunResult> {
  return runCtl(['produce', ...drv('./d'), '--name', topic, ...extra], { cwd: dir, input });
}

async function consumeCli(dir: string, topic: string, ...extra: string[]): Promise<RunResult> {
  return runCtl(['consume', ...drv('./d'), '--name', topic, ...extra], { cwd: dir });
}

/** Runs diaspora-ctl with its stdout on the file descriptor `stdout` (e.g. /dev/full); killed after 20 s. */
async function runWithStdout(args: string[], stdout: number): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: ctlEnv(), stdio: ['ignore', stdout, 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    return { code, stderr };
  } finally {
    clearTimeout(timer);
  }
}

describe('produce / consume', { concurrency: 4 }, () => {
  test('raw lines (quotes, backslashes, unicode) round trip byte for byte; --data-file', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(join(dir, 'd'), 't');
      const lines = ['he said "hi"', 'back\\slash and \\n not a newline', 'unicode é ✓ 😀 \u0001', '{"not":"parsed"}', '  spaces  ', '\t tab'];
      let r = await produceCli(dir, 't', lines.join('\n') + '\n');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      assert.ok(logLines(r.stderr).includes(`[info] Produced ${lines.length} event(s) to t`), r.stderr);

      const data = Buffer.from([0, 1, 2, 255, 254, 0x0a, 0x0d, 65, 66]);
      writeFileSync(join(dir, 'data.bin'), data);
      r = await produceCli(dir, 't', 'with data 1\nwith data 2\n', '--data-file', 'data.bin');
      assert.equal(r.code, 0, r.stderr);

      r = await consumeCli(dir, 't', '--from-beginning');
      assert.equal(r.code, 0, r.stderr);
      const out = parseLines(r.stdout);
      assert.deepEqual(
        out.map((l) => l.metadata),
        [...lines, 'with data 1', 'with data 2'],
      );
      assert.deepEqual(
        out.map((l) => l.id),
        out.map((_, i) => i),
      );
      for (const l of out.slice(0, lines.length)) {
        assert.equal(l.data_size, 0);
        assert.equal(l.data, '');
        assert.equal(l.partition, 0);
      }
      for (const l of out.slice(lines.length)) {
        assert.equal(l.data_size, data.length);
        assert.deepEqual(Buffer.from(l.data as string, 'base64'), data);
      }

      // the library sees the same strings (metadata stored as JSON strings, not re-parsed)
      const stored = await readAll(join(dir, 'd'), 't');
      assert.deepEqual(
        stored.map((e) => e.json),
        [...lines, 'with data 1', 'with data 2'],
      );
      assert.deepEqual(stored.at(-1)?.data, data);
      assert.equal(stored[0]?.dump, JSON.stringify(lines[0]));

      // --no-data: no data fields
      r = await consumeCli(dir, 't', '--from-beginning', '--no-data', '--max', '1');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(parseLines(r.stdout), [{ partition: 0, id: 0, metadata: lines[0] }]);
    } finally {
      cleanup();
    }
  });

  test('--format json: an invalid line is reported (exit 1), valid lines are stored', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(join(dir, 'd'), 'j');
      const r = await produceCli(dir, 'j', '{"a":1}\n{bad\n[1,"x",null]\n"str"\n', '--format', 'json');
      assert.equal(r.code, 1, r.stderr);
      const errors = logLines(r.stderr).filter((l) => l.startsWith('[error] '));
      assert.equal(errors.length, 1, r.stderr);
      assert.ok((errors[0] as string).startsWith('[error] Line 2: Could not parse JSON'), r.stderr);
      assert.ok(logLines(r.stderr).includes('[info] Produced 3 event(s) to j, 1 line(s) failed'), r.stderr);
      const stored = await readAll(join(dir, 'd'), 'j');
      assert.deepEqual(
        stored.map((e) => e.json),
        [{ a: 1 }, [1, 'x', null], 'str'],
      );
      const c = await consumeCli(dir, 'j', '--from-beginning');
      assert.deepEqual(
        parseLines(c.stdout).map((l) => l.metadata),
        [{ a: 1 }, [1, 'x', null], 'str'],
      );
    } finally {
      cleanup();
    }
  });

  test('raw: a line of invalid UTF-8 is reported (exit 1), not stored with U+FFFD; CRLF and a last line without newline', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(join(dir, 'd'), 'u');
      const input = Buffer.concat([Buffer.from('first\r\n'), Buffer.from([0x61, 0x62, 0xff, 0x63, 0x0a]), Buffer.from('caf\u00e9\nlast')]);
      const r = await produceCli(dir, 'u', input);
      assert.equal(r.code, 1, r.stderr);
      const errors = logLines(r.stderr).filter((l) => l.startsWith('[error] '));
      assert.deepEqual(errors, ['[error] Line 2: invalid UTF-8'], r.stderr);
      assert.ok(logLines(r.stderr).includes('[info] Produced 3 event(s) to u, 1 line(s) failed'), r.stderr);
      const stored = await readAll(join(dir, 'd'), 'u');
      assert.deepEqual(
        stored.map((e) => e.json),
        ['first', 'caf\u00e9', 'last'],
      );
    } finally {
      cleanup();
    }
  });

  for (const [signal, exitCode] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    test(`produce interrupted by ${signal} while stdin stays open: what was read is written, exit ${exitCode}`, T, async () => {
      const { dir, cleanup } = tempDir();
      const child = spawn(process.execPath, [BIN, 'produce', ...drv('./d'), '--name', 't', '--batch-size', '100'], { cwd: dir, env: ctlEnv(), stdio: ['pipe', 'ignore', 'pipe'] });
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        await createTopic(join(dir, 'd'), 't');
        let stderr = '';
        child.stderr?.setEncoding('utf8').on('data', (x: string) => (stderr += x));
        const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
        // 250 lines, then nothing more: stdin stays open, as at a terminal
        child.stdin?.write(Array.from({ length: 250 }, (_, i) => `line ${i}`).join('\n') + '\n');
        const stored = async (): Promise<number> => (await readAll(join(dir, 'd'), 't')).length;
        for (let k = 0; k < 200 && (await stored()) < 200; k++) await new Promise((r) => setTimeout(r, 25));
        child.kill(signal);
        const code = await closed;
        // it used to die of the signal (no summary, and whatever was pushed but not yet written was lost)
        assert.equal(code, exitCode, stderr);
        assert.ok(logLines(stderr).includes('[info] Produced 250 event(s) to t'), stderr);
        assert.ok(logLines(stderr).includes(`[warning] Interrupted by ${signal}`), stderr);
        assert.deepEqual(
          (await readAll(join(dir, 'd'), 't')).map((e) => e.json),
          Array.from({ length: 250 }, (_, i) => `line ${i}`),
        );
      } finally {
        clearTimeout(timer);
        child.kill('SIGKILL');
        cleanup();
      }
    });
  }

  test('consume | head: the reader leaving ends consume cleanly (exit 0, no EPIPE crash); the group keeps only what was written', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'data');
      await createTopic(root, 't');
      const n = 20_000;
      await produce(root, 't', Array.from({ length: n }, (_, i) => ({ metadata: { i, pad: 'x'.repeat(100) } })));
      const child = spawn(process.execPath, [BIN, 'consume', ...drv(root), '--name', 't', '--from-beginning', '--group', 'g'], {
        env: ctlEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (s: string) => (stderr += s));
      // read a little, then leave like `head -c 100`
      await new Promise<void>((resolve) =>
        child.stdout.once('data', () => {
          child.stdout.pause();
          resolve();
        }),
      );
      child.stdout.destroy();
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('exit', (c) => {
          clearTimeout(timer);
          resolve(c);
        });
      });
      assert.equal(code, 0, stderr);
      assert.doesNotMatch(stderr, /EPIPE|Unhandled 'error' event|\[critical\]/, stderr);
      // the consumer was closed (positions committed), and not past what the pipe could have taken
      const next = (await committedPositions(root, 't', 'g')).get(0) ?? 0n;
      assert.ok(next > 0n && next < BigInt(n), `committed position ${next}`);
    } finally {
      cleanup();
    }
  });

  test('stdout on a full device (>/dev/full): topic list, topic describe, consume, bench consume → [error] write error (ENOSPC), exit 1', { ...T, skip: !existsSync('/dev/full') && 'no /dev/full' }, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'data');
      await createTopic(root, 't');
      await produce(root, 't', [{ metadata: { i: 1 } }, { metadata: { i: 2 } }]);
      const commands = [
        ['topic', 'list', ...drv(root)],
        ['topic', 'describe', ...drv(root), '--name', 't'],
        ['consume', ...drv(root), '--name', 't', '--from-beginning'],
        ['bench', 'consume', '-d', 'files', '--driver.root_path', root, '-t', 't', '-n', '2', '--warmup', '0'],
      ];
      for (const args of commands) {
        const full = openSync('/dev/full', 'w');
        let r;
        try {
          r = await runWithStdout(args, full);
        } finally {
          closeSync(full);
        }
        assert.equal(r.code, 1, `${args.join(' ')}\n${r.stderr}`);
        const errors = logLines(r.stderr).filter((l) => l.startsWith('[error] '));
        assert.deepEqual(errors, ['[error] Error: write error on standard output: ENOSPC: no space left on device, write'], args.join(' '));
      }
    } finally {
      cleanup();
    }
  });

  test('consume without --follow reads to the end seen at start, even when events are large (3 x 40 MB) and a pull waits', { timeout: 120_000 }, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'data');
      await createTopic(root, 'big');
      const size = 40 << 20;
      await produce(root, 'big', [0, 1, 2].map((i) => ({ metadata: { i }, data: Buffer.alloc(size, 65 + i) })));
      const r = await runCtl(['consume', ...drv(root), '--name', 'big', '--from-beginning'], { cwd: dir, timeoutMs: 90_000 });
      assert.equal(r.code, 0, r.stderr);
      const lines = parseLines(r.stdout);
      assert.deepEqual(
        lines.map((l) => [l.id, l.metadata, l.data_size]),
        [0, 1, 2].map((i) => [i, { i }, size]),
      );
      assert.ok(lines.every((l, i) => Buffer.from(l.data as string, 'base64').equals(Buffer.alloc(size, 65 + i))));
    } finally {
      cleanup();
    }
  });

  /**
   * A driver plugin wrapping the files driver whose source takes 800 ms per fetch, and hands out nothing after
   * `--driver.stall_after <n>` events (a source that stalls). Returns the --driver value.
   */
  function slowDriver(dir: string): string {
    writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
    writeFileSync(
      join(dir, 'slow.js'),
      `export function register(r) {
  r.registerDriver('slowfiles', async (o) => {
    const d = await r.drivers.get('files')(o);
    let left = Number(o.json.stall_after ?? Infinity);
    const openTopic = d.openTopic.bind(d);
    d.openTopic = async (name) => {
      const t = await openTopic(name);
      const createSource = t.createSource.bind(t);
      t.createSource = async (s) => {
        const src = await createSource(s);
        const fetch = src.fetch.bind(src);
        src.fetchStored = undefined;
        src.fetch = async (max, signal, wait) => {
          if (left <= 0) return new Promise((resolve) => signal.addEventListener('abort', () => resolve([])));
          await new Promise((resolve) => setTimeout(resolve, 800));
          const events = (await fetch(max, signal, wait)).slice(0, left);
          left -= events.length;
          return events;
        };
        return src;
      };
      return t;
    };
    return d;
  });
}
`,
    );
    return `slowfiles:${join(dir, 'slow.js')}`;
  }

  test('consume without --follow does not stop when a pull waits longer than a moment (each fetch of the source takes 800 ms)', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'data');
      await createTopic(root, 't', { num_partitions: 2 });
      await produce(root, 't', [0, 1, 2, 3].map((i) => ({ metadata: { i }, partition: i % 2 })));
      const r = await runCtl(['consume', '--driver', slowDriver(dir), '--driver.root_path', root, '--name', 't', '--from-beginning'], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        parseLines(r.stdout)
          .map((l) => (l.metadata as { i: number }).i)
          .sort(),
        [0, 1, 2, 3],
      );
    } finally {
      cleanup();
    }
  });

  test('consume without --follow gives up on a source that stalls short of the end: 30 s without an event → [error], exit 1', { timeout: 60_000 }, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'data');
      await createTopic(root, 't');
      await produce(root, 't', [0, 1, 2].map((i) => ({ metadata: { i } })));
      const args = ['consume', '--driver', slowDriver(dir), '--driver.root_path', root, '--driver.stall_after', '1', '--name', 't', '--from-beginning'];
      const r = await runCtl(args, { cwd: dir, timeoutMs: 50_000 });
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(
        parseLines(r.stdout).map((l) => l.metadata),
        [{ i: 0 }],
      );
      assert.deepEqual(
        logLines(r.stderr).filter((l) => l.startsWith('[error] ')),
        ['[error] Error: No event for 30 s before the end of the topic (partition 0 at 1 of 3): stopped after 1 event(s)'],
      );
    } finally {
      cleanup();
    }
  });

  test('bad numbers: --max, --batch-size, --partition are refused with a clear message and exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(join(dir, 'd'), 'n', { num_partitions: 2 });
      for (const [cmd, opt, value, expected] of [
        ['consume', '--max', 'abc', "PARSE ERROR: option '--max <n>' argument 'abc' is invalid. Expected a non-negative integer."],
        ['consume', '--max', '-1', "PARSE ERROR: option '--max <n>' argument '-1' is invalid. Expected a non-negative integer."],
        ['produce', '--batch-size', 'abc', "PARSE ERROR: option '--batch-size <n>' argument 'abc' is invalid. Expected a non-negative integer."],
        ['produce', '--batch-size', '0', "PARSE ERROR: option '--batch-size <n>' argument '0' is invalid. Expected an integer >= 1."],
        ['produce', '--partition', 'abc', "PARSE ERROR: option '--partition <n>' argument 'abc' is invalid. Expected a non-negative integer."],
        ['produce', '--partition', '2', '[error] --partition 2: topic n has 2 partition(s)'],
      ] as const) {
        const r = cmd === 'consume' ? await consumeCli(dir, 'n', '--from-beginning', opt, value) : await produceCli(dir, 'n', 'x\n', opt, value);
        assert.equal(r.code, 1, `${cmd} ${opt} ${value}: ${r.stderr}`);
        assert.ok(logLines(r.stderr).includes(expected), `${cmd} ${opt} ${value}: ${r.stderr}`);
        assert.equal(r.stdout, '');
      }
      assert.deepEqual(await readAll(join(dir, 'd'), 'n'), [], 'nothing was produced');
    } finally {
      cleanup();
    }
  });

  test('produce --batch-size adaptive (the default its help names) and --batch-size 2 are accepted', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(join(dir, 'd'), 'a');
      for (const size of ['adaptive', '2']) {
        const r = await produceCli(dir, 'a', 'x\ny\nz\n', '--batch-size', size);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(logLines(r.stderr).includes('[info] Produced 3 event(s) to a'), r.stderr);
      }
      assert.equal((await readAll(join(dir, 'd'), 'a')).length, 6);
    } finally {
      cleanup();
    }
  });

  test('--format envelope round trip with data', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(join(dir, 'd'), 'e');
      const bin = Buffer.from([0, 255, 10, 13, 1, 2, 3]);
      const input = [
        JSON.stringify({ metadata: { k: 'v', n: 1 }, data: bin.toString('base64') }),
        JSON.stringify({ metadata: 'just a string' }),
        JSON.stringify({ data: Buffer.from('payload').toString('base64') }),
      ].join('\n');
      const r = await produceCli(dir, 'e', input + '\n', '--format', 'envelope');
      assert.equal(r.code, 0, r.stderr);
      const c = await consumeCli(dir, 'e', '--from-beginning');
      assert.equal(c.code, 0, c.stderr);
      const out = parseLines(c.stdout);
      assert.deepEqual(
        out.map((l) => l.metadata),
        [{ k: 'v', n: 1 }, 'just a string', {}],
      );
      assert.deepEqual(Buffer.from(out[0]?.data as string, 'base64'), bin);
      assert.equal(out[0]?.data_size, bin.length);
      assert.equal(out[1]?.data_size, 0);
      assert.equal(Buffer.from(out[2]?.data as string, 'base64').toString(), 'payload');

      // not an object, data not a string: reported, exit 1
      const bad = await produceCli(dir, 'e', '[1]\n{"data":5}\n', '--format', 'envelope');
      assert.equal(bad.code, 1);
      const errors = logLines(bad.stderr).filter((l) => l.startsWith('[error] '));
      assert.equal(errors.length, 2, bad.stderr);
      assert.ok((errors[0] as string).startsWith('[error] Line 1: '), bad.stderr);
      assert.ok((errors[1] as string).startsWith('[error] Line 2: '), bad.stderr);
    } finally {
      cleanup();
    }
  });

  test('consume --group g --max 2, then --group g continues after the 2 acknowledged events', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(join(dir, 'd'), 'g', { num_partitions: 1 });
      await produce(
        join(dir, 'd'),
        'g',
        Array.from({ length: 5 }, (_, i) => ({ metadata: `e${i}` })),
      );
      let r = await consumeCli(dir, 'g', '--group', 'g', '--max', '2');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        parseLines(r.stdout).map((l) => l.metadata),
        ['e0', 'e1'],
      );
      r = await consumeCli(dir, 'g', '--group', 'g');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        parseLines(r.stdout).map((l) => l.metadata),
        ['e2', 'e3', 'e4'],
      );
      // nothing left for the group; another group starts at the beginning
      r = await consumeCli(dir, 'g', '--group', 'g');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
      r = await consumeCli(dir, 'g', '--group', 'other');
      assert.deepEqual(
        parseLines(r.stdout).map((l) => l.metadata),
        ['e0', 'e1', 'e2', 'e3', 'e4'],
      );
      // without --group and --from-beginning: starts at the end
      r = await consumeCli(dir, 'g');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, '');
    } finally {
      cleanup();
    }
  });

  test('unknown topic: exit 1 with [error] Error: Topic directory does not exist:', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      for (const r of [await consumeCli(dir, 'nosuch', '--from-beginning'), await produceCli(dir, 'nosuch', 'x\n')]) {
        assert.equal(r.code, 1);
        assert.equal(r.stdout, '');
        const errors = logLines(r.stderr).filter((l) => l.startsWith('[error] '));
        assert.equal(errors.length, 1, r.stderr);
        assert.ok((errors[0] as string).startsWith('[error] Error: Topic directory does not exist:'), r.stderr);
      }
    } finally {
      cleanup();
    }
  });

  test('consume output larger than 64 KiB through a pipe is complete (3000 events, 4 partitions)', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const N = 3000;
      await createTopic(join(dir, 'd'), 'big', { num_partitions: 4 });
      const pad = 'p'.repeat(60);
      await produce(
        join(dir, 'd'),
        'big',
        Array.from({ length: N }, (_, i) => ({ metadata: { i, pad }, data: Buffer.from(`data-${i}`) })),
      );
      const r = await consumeCli(dir, 'big', '--from-beginning');
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdoutBytes.length > 65536 * 2, `${r.stdoutBytes.length} bytes`);
      const out = parseLines(r.stdout);
      assert.equal(out.length, N);
      const seen = new Set(out.map((l) => (l.metadata as { i: number }).i));
      assert.equal(seen.size, N);
      for (const l of out) {
        const i = (l.metadata as { i: number }).i;
        assert.equal(Buffer.from(l.data as string, 'base64').toString(), `data-${i}`);
      }
      // per partition: ids 0.. in order
      for (let p = 0; p < 4; p++) {
        const ids = out.filter((l) => l.partition === p).map((l) => l.id);
        assert.deepEqual(
          ids,
          ids.map((_, k) => k),
        );
      }
      // --max bounds it
      const m = await consumeCli(dir, 'big', '--from-beginning', '--max', '10');
      assert.equal(parseLines(m.stdout).length, 10);
    } finally {
      cleanup();
    }
  });

  test('produce: a large input (more than a pipe holds) with --partition', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      await createTopic(join(dir, 'd'), 'many', { num_partitions: 3 });
      const N = 5000;
      const input = Array.from({ length: N }, (_, i) => `line ${i} ${'z'.repeat(40)}`).join('\n') + '\n';
      const r = await produceCli(dir, 'many', input, '--partition', '2');
      assert.equal(r.code, 0, r.stderr);
      const stored = await readAll(join(dir, 'd'), 'many');
      assert.equal(stored.length, N);
      assert.ok(stored.every((e) => e.partition === 2));
      assert.deepEqual(
        stored.map((e) => e.json),
        Array.from({ length: N }, (_, i) => `line ${i} ${'z'.repeat(40)}`),
      );
    } finally {
      cleanup();
    }
  });
});
