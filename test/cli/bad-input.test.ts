/**
 * Bad input through `diaspora-ctl`, end to end: metadata rejected by a topic's validator (`schema`, `eventbridge`)
 * in `produce`, topic names that would leave the files root when a topic is OPENED (consume, produce, topic
 * describe, topic delete), and driver types that do not exist (produce, consume, forward). Every case checks the
 * message, the exit code and what is (or is not) stored.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BIN, CtlProcess, committedPositions, createTopic, ctlEnv, logLines, produce, readAll, runCtl, tempDir, waitFor, type RunResult } from '../helpers/cli.js';

const T = { timeout: 60_000 };

function drv(root: string): string[] {
  return ['--driver', 'files', '--driver.root_path', root];
}

/** The `[error] …` log lines of a run (timestamps removed). */
function errorLines(r: RunResult): string[] {
  return logLines(r.stderr).filter((l) => l.startsWith('[error] '));
}

function consumedMetadata(r: RunResult): unknown[] {
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { metadata: unknown }).metadata);
}

/** Every entry below `dir`: directories, and files with their size, mtime and content hash. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) {
        out.set(p, 'dir');
        walk(p);
      } else {
        out.set(p, `${st.size} ${st.mtimeMs} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      }
    }
  };
  walk(dir);
  return out;
}

describe('produce: metadata rejected by the topic validator', { concurrency: 2 }, () => {
  test('schema validator (topic create --validator schema --validator.schema.*): [error] Line 2: Metadata does not comply…, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      // {"type":"object","required":["x"]} from dotted options ("x," is the one-element array ["x"])
      const c = await runCtl(
        ['topic', 'create', ...drv('./d'), '--name', 's', '--validator', 'schema', '--validator.schema.type', 'object', '--validator.schema.required', 'x,'],
        { cwd: dir },
      );
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'd', 's', 'validator.json'), 'utf8')), { type: 'schema', schema: { type: 'object', required: ['x'] } });

      const r = await runCtl(['produce', ...drv('./d'), '--name', 's', '--format', 'json'], { cwd: dir, input: '{"x":1}\n{"y":2}\n{"x":3,"y":4}\n' });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      const errors = errorLines(r);
      assert.equal(errors.length, 1, r.stderr);
      assert.equal(errors[0], '[error] Line 2: Metadata does not comply to required schema:', r.stderr);
      // the detail line of the schema error follows (api.md §5.3: '<pointer>' - '<value>': <message>)
      const lines = logLines(r.stderr);
      const detail = lines[lines.indexOf(errors[0] as string) + 1] ?? '';
      assert.ok(detail.startsWith(`'' - '{"y":2}': `), r.stderr);
      assert.match(detail, /x/, r.stderr);
      assert.ok(lines.includes('[info] Produced 2 event(s) to s, 1 line(s) failed'), r.stderr);

      // the line before the bad one (and the one after it) are stored, with dense ids
      const back = await runCtl(['consume', ...drv('./d'), '--name', 's', '--from-beginning'], { cwd: dir });
      assert.equal(back.code, 0, back.stderr);
      assert.deepEqual(consumedMetadata(back), [{ x: 1 }, { x: 3, y: 4 }]);
      const stored = await readAll(join(dir, 'd'), 's');
      assert.deepEqual(
        stored.map((e) => [e.id, e.json]),
        [
          [0n, { x: 1 }],
          [1n, { x: 3, y: 4 }],
        ],
      );
    } finally {
      cleanup();
    }
  });

  test('eventbridge validator: [error] Line 2: Metadata object does not satisfy eventbridge pattern, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      // pattern {"kind":["a","b"]}: the field must be present and equal to "a" or "b"
      const c = await runCtl(['topic', 'create', ...drv('./d'), '--name', 'e', '--validator', 'eventbridge', '--validator.schema.kind', 'a,b'], { cwd: dir });
      assert.equal(c.code, 0, c.stderr);
      assert.deepEqual(JSON.parse(readFileSync(join(dir, 'd', 'e', 'validator.json'), 'utf8')), { type: 'eventbridge', schema: { kind: ['a', 'b'] } });

      const r = await runCtl(['produce', ...drv('./d'), '--name', 'e', '--format', 'json'], {
        cwd: dir,
        input: '{"kind":"a","n":1}\n{"kind":"c","n":2}\n{"kind":"b","n":3}\n{"n":4}\n',
      });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.deepEqual(
        errorLines(r),
        ['[error] Line 2: Metadata object does not satisfy eventbridge pattern', '[error] Line 4: Metadata object does not satisfy eventbridge pattern'],
        r.stderr,
      );
      assert.ok(logLines(r.stderr).includes('[info] Produced 2 event(s) to e, 2 line(s) failed'), r.stderr);

      const back = await runCtl(['consume', ...drv('./d'), '--name', 'e', '--from-beginning'], { cwd: dir });
      assert.equal(back.code, 0, back.stderr);
      assert.deepEqual(consumedMetadata(back), [
        { kind: 'a', n: 1 },
        { kind: 'b', n: 3 },
      ]);
    } finally {
      cleanup();
    }
  });
});

describe('opening a topic whose name leaves the files root', { concurrency: 2 }, () => {
  /**
   * A temporary directory with the driver root `root/` (holding a topic `inside`) and, outside it, a real topic
   * `other/t1` with two events, reachable as `../other/t1` from the root and by its absolute path.
   */
  async function setup(): Promise<{ dir: string; root: string; outside: string; cleanup: () => void }> {
    const { dir, cleanup } = tempDir();
    const root = join(dir, 'root');
    await createTopic(root, 'inside');
    await createTopic(join(dir, 'other'), 't1');
    await produce(join(dir, 'other'), 't1', [{ metadata: { secret: 1 } }, { metadata: { secret: 2 }, data: Buffer.from('payload') }]);
    return { dir, root, outside: join(dir, 'other'), cleanup };
  }

  const commands: { name: string; args: string[]; input?: string }[] = [
    { name: 'consume', args: ['consume', '--from-beginning'] },
    { name: 'produce', args: ['produce'], input: 'written outside?\n' },
    { name: 'topic describe', args: ['topic', 'describe'] },
    { name: 'topic delete', args: ['topic', 'delete'] },
  ];

  for (const c of commands) {
    test(`${c.name} --name ../other/t1 (and ../other/t2, which does not exist): [error] Error: Invalid topic name, exit 1, nothing outside touched`, T, async () => {
      const s = await setup();
      try {
        const before = snapshot(s.outside);
        for (const name of ['../other/t1', '../other/t2']) {
          const r = await runCtl([...c.args, ...drv(s.root), '--name', name], { cwd: s.dir, ...(c.input !== undefined ? { input: c.input } : {}) });
          assert.equal(r.code, 1, r.stderr);
          assert.equal(r.stdout, '', 'nothing of the outside topic is printed');
          assert.deepEqual(errorLines(r), [`[error] Error: Invalid topic name: ${name}`], r.stderr);
        }
        assert.deepEqual(snapshot(s.outside), before, 'the topic outside the root was changed');
        assert.equal(existsSync(join(s.outside, 't2')), false, 'a topic was created outside the root');
        assert.deepEqual(
          (await readAll(s.outside, 't1')).map((e) => e.json),
          [{ secret: 1 }, { secret: 2 }],
        );
        assert.deepEqual(readdirSync(s.root), ['inside'], 'nothing new inside the root either');
      } finally {
        s.cleanup();
      }
    });
  }

  test('topic delete --name <absolute path of a real topic>: [error] Error: Invalid topic name, exit 1, the topic survives', T, async () => {
    const s = await setup();
    try {
      const before = snapshot(s.outside);
      const name = join(s.outside, 't1'); // absolute
      const r = await runCtl(['topic', 'delete', ...drv(s.root), '--name', name], { cwd: s.dir });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.deepEqual(errorLines(r), [`[error] Error: Invalid topic name: ${name}`], r.stderr);
      assert.deepEqual(snapshot(s.outside), before);
      assert.equal((await readAll(s.outside, 't1')).length, 2);
    } finally {
      s.cleanup();
    }
  });

  // an absolute name escapes the root (the reference's `root / name` is `name`): refused, not taken as relative
  for (const c of commands.filter((x) => x.name !== 'topic delete')) {
    test(`${c.name} --name <absolute path of a real topic>: [error] Error: Invalid topic name, exit 1, nothing outside the root read or written`, T, async () => {
      const s = await setup();
      try {
        const before = snapshot(s.outside);
        const name = join(s.outside, 't1');
        const r = await runCtl([...c.args, ...drv(s.root), '--name', name], { cwd: s.dir, ...(c.input !== undefined ? { input: c.input } : {}) });
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, '', 'nothing of the outside topic is printed');
        assert.deepEqual(errorLines(r), [`[error] Error: Invalid topic name: ${name}`], r.stderr);
        assert.deepEqual(snapshot(s.outside), before, 'the topic outside the root was changed');
        assert.deepEqual(readdirSync(s.root), ['inside'], 'nothing created inside the root');
      } finally {
        s.cleanup();
      }
    });
  }
});

describe('unknown driver type', { concurrency: 3 }, () => {
  const MESSAGE = '[error] Error: Trying to load diaspora-stream-nosuchdrv failed: ';

  test('produce --driver nosuchdrv: [error] Error: Trying to load diaspora-stream-nosuchdrv failed: …, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await runCtl(['produce', '--driver', 'nosuchdrv', '--name', 't'], { cwd: dir, input: 'x\n' });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      const errors = errorLines(r);
      assert.equal(errors.length, 1, r.stderr);
      assert.ok((errors[0] as string).startsWith(MESSAGE), r.stderr);
      assert.deepEqual(readdirSync(dir), [], 'nothing created in the working directory');
    } finally {
      cleanup();
    }
  });

  test('consume --driver nosuchdrv: [error] Error: Trying to load diaspora-stream-nosuchdrv failed: …, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const r = await runCtl(['consume', '--driver', 'nosuchdrv', '--name', 't', '--from-beginning'], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      const errors = errorLines(r);
      assert.equal(errors.length, 1, r.stderr);
      assert.ok((errors[0] as string).startsWith(MESSAGE), r.stderr);
    } finally {
      cleanup();
    }
  });

  test('forward --config with drivers.x.type nosuchdrv: [error] Diaspora error: … nosuchdrv, exit 1 (also with --check)', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'data');
      await createTopic(root, 'dst');
      const config = join(dir, 'fwd.yaml');
      writeFileSync(
        config,
        ['drivers:', '  bad:', '    type: nosuchdrv', '  local:', '    type: files', '    options:', `      root_path: ${JSON.stringify(root)}`, 'forward:', '  - from: bad/src', '    to: local/dst', ''].join('\n'),
      );
      const before = snapshot(root);
      for (const extra of [[], ['--check']]) {
        const r = await runCtl(['forward', '--config', config, ...extra], { cwd: dir });
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, '');
        const errors = errorLines(r);
        assert.equal(errors.length, 1, r.stderr);
        assert.ok((errors[0] as string).startsWith('[error] Diaspora error: Trying to load diaspora-stream-nosuchdrv failed: '), r.stderr);
        const lines = logLines(r.stderr);
        assert.ok(lines.includes("[info] Creating driver 'bad' (type=nosuchdrv)"), r.stderr);
        assert.ok(!lines.some((l) => l.startsWith('[info] Created forward policy') || l.startsWith('[info] Forwarding daemon running')), r.stderr);
      }
      assert.deepEqual(snapshot(root), before, 'the destination was touched');
    } finally {
      cleanup();
    }
  });
});

describe('consume: an event that cannot be decoded', { concurrency: 2 }, () => {
  test('corrupt metadata of event 2: the events before it are printed (and acknowledged for --group), then [error] names the event, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'd');
      await createTopic(root, 'c');
      await produce(root, 'c', [{ metadata: { a: 1 } }, { metadata: { a: 2 } }, { metadata: { a: 3 } }]);
      // overwrite the stored text of event 2 in place (same length): it no longer parses as JSON
      const file = join(root, 'c', 'partitions', '00000000', 'metadata');
      const bytes = readFileSync(file);
      const at = bytes.indexOf('{"a":3}');
      assert.ok(at > 0);
      bytes.write('XXXX', at);
      writeFileSync(file, bytes);

      const r = await runCtl(['consume', ...drv('./d'), '--name', 'c', '--from-beginning', '--group', 'g'], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(consumedMetadata(r), [{ a: 1 }, { a: 2 }], 'the events read before the bad one are printed');
      const errors = errorLines(r);
      assert.equal(errors.length, 1, r.stderr);
      assert.match(errors[0] as string, /^\[error\] Error: Event 2 of partition 0: Could not parse JSON: /, r.stderr);
      assert.deepEqual(await committedPositions(root, 'c', 'g'), new Map([[0, 2n]]), 'the printed events are acknowledged, not the bad one');
    } finally {
      cleanup();
    }
  });
});

describe('produce --data-file that cannot be read', { concurrency: 2 }, () => {
  for (const c of [
    { what: 'a directory', setup: (dir: string): string => join(dir, 'adir') },
    { what: 'missing', setup: (dir: string): string => join(dir, 'nosuch.bin') },
  ]) {
    test(`--data-file ${c.what}: [error] names the option and the file, exit 1, nothing produced`, T, async () => {
      const { dir, cleanup } = tempDir();
      try {
        const root = join(dir, 'd');
        await createTopic(root, 't');
        mkdirSync(join(dir, 'adir'));
        const file = c.setup(dir);
        const r = await runCtl(['produce', ...drv('./d'), '--name', 't', '--data-file', file], { cwd: dir, input: 'x\n' });
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, '');
        const errors = errorLines(r);
        assert.equal(errors.length, 1, r.stderr);
        assert.ok((errors[0] as string).startsWith(`[error] Error: Cannot read --data-file ${file}: `), r.stderr);
        assert.equal((await readAll(root, 't')).length, 0);
      } finally {
        cleanup();
      }
    });
  }
});

describe('produce with a directory as standard input', () => {
  test('produce < <directory>: [error] Error: Cannot read standard input: it is a directory, exit 1 (not "Produced 0 event(s)", exit 0)', T, async () => {
    const { dir, cleanup } = tempDir();
    const fd = openSync(dir, 'r');
    try {
      await createTopic(join(dir, 'd'), 't');
      const child = spawn(process.execPath, [BIN, 'produce', ...drv('./d'), '--name', 't'], { cwd: dir, env: ctlEnv(), stdio: [fd, 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      let code: number | null;
      try {
        code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      } finally {
        clearTimeout(timer);
      }
      assert.equal(code, 1, stderr);
      assert.deepEqual(logLines(stderr).filter((l) => l.startsWith('[error] ')), ['[error] Error: Cannot read standard input: it is a directory'], stderr);
    } finally {
      closeSync(fd);
      cleanup();
    }
  });
});

describe('config file that is not UTF-8', () => {
  test('topic create --driver-config <Latin-1 file>: [error] Error: Could not parse JSON: invalid UTF-8, exit 1, no root created under a mangled name', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'cfg.json'), Buffer.concat([Buffer.from('{"root_path": "./caf'), Buffer.from([0xe9]), Buffer.from('"}')]));
      const r = await runCtl(['topic', 'create', '--driver', 'files', '--driver-config', 'cfg.json', '--name', 't'], { cwd: dir });
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(errorLines(r), ['[error] Error: Could not parse JSON: invalid UTF-8'], r.stderr);
      assert.deepEqual(readdirSync(dir), ['cfg.json'], 'nothing created');
    } finally {
      cleanup();
    }
  });
});

describe('produce --format json: numbers beyond the double range', () => {
  test('1e400 is refused (Could not parse JSON: number overflow parsing …), not stored as null; the other lines are stored, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'd');
      await createTopic(root, 't');
      const r = await runCtl(['produce', ...drv('./d'), '--name', 't', '--format', 'json'], { cwd: dir, input: '{"a":1}\n1e400\n{"x":-2e999}\n{"b":2}\n' });
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(
        errorLines(r).map((l) => l.replace(/ at line \d+, column \d+$/, '')),
        ["[error] Line 2: Could not parse JSON: number overflow parsing '1e400'", "[error] Line 3: Could not parse JSON: number overflow parsing '-2e999'"],
        r.stderr,
      );
      assert.deepEqual((await readAll(root, 't')).map((e) => e.json), [{ a: 1 }, { b: 2 }]);
    } finally {
      cleanup();
    }
  });
});

describe('produce --format envelope with lines that are not envelopes', () => {
  test('plain JSON objects are refused (Invalid envelope: no metadata or data key …), not stored as events with metadata {}, exit 1', T, async () => {
    const { dir, cleanup } = tempDir();
    try {
      const root = join(dir, 'd');
      await createTopic(root, 't');
      const input = '{"metadata":{"ok":1}}\n{"user":"bob","action":"login"}\n{"metadata":{"ok":2},"data":"aGk="}\n';
      const r = await runCtl(['produce', ...drv('./d'), '--name', 't', '--format', 'envelope'], { cwd: dir, input });
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(errorLines(r), ["[error] Line 2: Invalid envelope: no 'metadata' or 'data' key (found 'user', 'action')"], r.stderr);
      assert.deepEqual((await readAll(root, 't')).map((e) => [e.json, e.data.toString()]), [[{ ok: 1 }, ''], [{ ok: 2 }, 'hi']]);
    } finally {
      cleanup();
    }
  });
});

describe('consume --follow of a topic that is deleted', () => {
  for (const recreate of [false, true]) {
    const what = recreate ? 'topic delete, then topic create of the same name (within a second)' : 'topic delete';
    const before = recreate ? 'it followed the removed files forever' : 'it waited forever, silently';
    test(`${what} while consume --follow waits: [error] Error: Topic t was deleted, exit 1 (${before})`, T, async () => {
      await followDeleted(recreate);
    });
  }

  async function followDeleted(recreate: boolean): Promise<void> {
    const { dir, cleanup } = tempDir();
    let p: CtlProcess | undefined;
    try {
      const root = join(dir, 'd');
      await createTopic(root, 't');
      await produce(root, 't', [{ metadata: { i: 1 } }]);
      p = new CtlProcess(['consume', ...drv(root), '--name', 't', '--from-beginning', '--follow'], dir);
      const c = p;
      assert.ok(await waitFor(() => c.stdout.includes('\n') || !c.running, 10_000), c.stderr);
      assert.deepEqual(consumedMetadata({ stdout: c.stdout } as RunResult), [{ i: 1 }]);
      const d = await runCtl(['topic', 'delete', ...drv(root), '--name', 't'], { cwd: dir });
      assert.equal(d.code, 0, d.stderr);
      if (recreate) await createTopic(root, 't');
      const { code } = await c.exit(15_000);
      assert.equal(code, 1, c.stderr);
      assert.deepEqual(c.logLines.filter((l) => l.startsWith('[error] ')), ['[error] Error: Topic t was deleted'], c.stderr);
    } finally {
      p?.kill();
      cleanup();
    }
  }
});
